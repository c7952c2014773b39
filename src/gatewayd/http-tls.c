/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <gnutls/x509.h>

#include "http-tls.h"
#include "log.h"
#include "macro.h"

#define CERT_CHAIN_MAX 16U

/* One loaded certificate chain and key. */
typedef struct TlsGeneration {
        gnutls_pcert_st pcert[CERT_CHAIN_MAX];
        unsigned n_pcert;
        gnutls_privkey_t key;
} TlsGeneration;

struct HttpTls {
        char *certificate, *key;
        /* current and the one before: GnuTLS borrows the pointers the callback returns for the
         * rest of a handshake, which may still run when SIGHUP swaps the certificate (one reload
         * per handshake is plenty of slack; each handshake asks again). */
        TlsGeneration *current, *previous;
};

/* GnuTLS's callback has no user data, and libmicrohttpd keeps the session pointer for itself:
 * there is one TLS listener per process, so one global. */
static HttpTls *tls_active;

static TlsGeneration *tls_generation_free(TlsGeneration *g) {
        if (!g)
                return NULL;
        for (unsigned i = 0; i < g->n_pcert; i++)
                gnutls_pcert_deinit(&g->pcert[i]);
        if (g->key)
                gnutls_privkey_deinit(g->key);
        free(g);
        return NULL;
}

static int tls_generation_load(const char *certificate, const char *key, TlsGeneration **ret) {
        gnutls_datum_t cert_data = {}, key_data = {};
        gnutls_x509_privkey_t x509_key = NULL;
        TlsGeneration *g;
        int r;

        g = calloc(1, sizeof(TlsGeneration));
        if (!g)
                return log_oom();

        r = gnutls_load_file(certificate, &cert_data);
        if (r < 0) {
                log_error("TLS.certificate: cannot read %s: %s", certificate, gnutls_strerror(r));
                r = -EIO;
                goto finish;
        }
        g->n_pcert = CERT_CHAIN_MAX;
        r = gnutls_pcert_list_import_x509_raw(g->pcert, &g->n_pcert, &cert_data, GNUTLS_X509_FMT_PEM, 0);
        if (r < 0) {
                g->n_pcert = 0;
                log_error("TLS.certificate: %s is not a PEM certificate chain: %s", certificate, gnutls_strerror(r));
                r = -EINVAL;
                goto finish;
        }
        r = gnutls_load_file(key, &key_data);
        if (r < 0) {
                log_error("TLS.key: cannot read %s: %s", key, gnutls_strerror(r));
                r = -EIO;
                goto finish;
        }
        r = gnutls_privkey_init(&g->key);
        if (r >= 0)
                r = gnutls_privkey_import_x509_raw(g->key, &key_data, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0) {
                log_error("TLS.key: %s is not an unencrypted PEM private key: %s", key, gnutls_strerror(r));
                r = -EINVAL;
                goto finish;
        }
        /* A key that does not belong to the certificate would fail every handshake: refuse it now. */
        r = gnutls_x509_privkey_init(&x509_key);
        if (r >= 0)
                r = gnutls_x509_privkey_import(x509_key, &key_data, GNUTLS_X509_FMT_PEM);
        if (r >= 0) {
                gnutls_x509_crt_t crt = NULL;
                uint8_t a[64], b[64];
                size_t na = sizeof(a), nb = sizeof(b);

                r = gnutls_x509_crt_init(&crt);
                if (r >= 0)
                        r = gnutls_x509_crt_import(crt, &g->pcert[0].cert, GNUTLS_X509_FMT_DER);
                if (r >= 0)
                        r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &na);
                if (r >= 0)
                        r = gnutls_x509_privkey_get_key_id(x509_key, GNUTLS_KEYID_USE_SHA256, b, &nb);
                if (crt)
                        gnutls_x509_crt_deinit(crt);
                if (r >= 0 && (na != nb || memcmp(a, b, na) != 0)) {
                        log_error("TLS.key: %s does not belong to the certificate in %s.", key, certificate);
                        r = -EINVAL;
                        goto finish;
                }
        }
        if (r < 0) {
                log_error("TLS: cannot check %s against %s: %s", key, certificate, gnutls_strerror(r));
                r = -EINVAL;
                goto finish;
        }
        *ret = TAKE_PTR(g);
        r = 0;
finish:
        if (x509_key)
                gnutls_x509_privkey_deinit(x509_key);
        gnutls_free(cert_data.data);
        if (key_data.data) {
                explicit_bzero(key_data.data, key_data.size);
                gnutls_free(key_data.data);
        }
        tls_generation_free(g);
        return r;
}

int http_tls_new(const char *certificate, const char *key, HttpTls **ret) {
        HttpTls *t;
        int r;

        if (!certificate || !key)
                return log_error_errno(EINVAL, "TLS: certificate and key are required for a TLS listener.");
        t = calloc(1, sizeof(HttpTls));
        if (!t || !(t->certificate = strdup(certificate)) || !(t->key = strdup(key))) {
                http_tls_free(t);
                return log_oom();
        }
        r = tls_generation_load(certificate, key, &t->current);
        if (r < 0) {
                http_tls_free(t);
                return r;
        }
        tls_active = t;
        *ret = t;
        return 0;
}

int http_tls_reload(HttpTls *t) {
        TlsGeneration *g;
        int r;

        r = tls_generation_load(t->certificate, t->key, &g);
        if (r < 0)
                return log_warning_errno(r, "Keeping the previous TLS certificate.");
        tls_generation_free(t->previous);
        t->previous = t->current;
        t->current = g;
        log_info("Reloaded the TLS certificate %s.", t->certificate);
        return 0;
}

HttpTls *http_tls_free(HttpTls *t) {
        if (!t)
                return NULL;
        if (tls_active == t)
                tls_active = NULL;
        tls_generation_free(t->current);
        tls_generation_free(t->previous);
        free(t->certificate);
        free(t->key);
        free(t);
        return NULL;
}

int http_tls_certificate_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                                  const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                                  gnutls_pcert_st **ret_pcert, unsigned *ret_pcert_length, gnutls_privkey_t *ret_key) {
        if (!tls_active || !tls_active->current)
                return -1;
        *ret_pcert = tls_active->current->pcert;
        *ret_pcert_length = tls_active->current->n_pcert;
        *ret_key = tls_active->current->key;
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

/* The TLS listener's certificate and key (config "TLS"), loaded at start and reloaded on SIGHUP.
 * libmicrohttpd has no call to swap a certificate given with MHD_OPTION_HTTPS_MEM_CERT at run
 * time, but it lets GnuTLS ask for the certificate on every handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK): that callback hands out whatever was loaded last. This is the
 * reason gatewayd links GnuTLS itself (the TLS is libmicrohttpd's, which uses GnuTLS). */

typedef struct HttpTls HttpTls;

/* Loads and checks both files (the key must belong to the certificate); errors are logged with
 * the config key. */
int http_tls_new(const char *certificate, const char *key, HttpTls **ret);
/* Rereads the files; on failure the previous certificate stays in use. */
int http_tls_reload(HttpTls *t);
HttpTls *http_tls_free(HttpTls *t);

int http_tls_certificate_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                                  const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                                  gnutls_pcert_st **ret_pcert, unsigned *ret_pcert_length, gnutls_privkey_t *ret_key);

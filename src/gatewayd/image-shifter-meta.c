/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-util.h"
#include "image-shifter-meta.h"
#include "json-util.h"
#include "macro.h"

int image_shifter_meta_path(const Image *i, char **ret) {
        const char *slash;

        if (!i->squashfs_path || !(slash = strrchr(i->squashfs_path, '/')))
                return -EINVAL;
        if (asprintf(ret, "%.*s/%s.meta", (int) (slash - i->squashfs_path), i->squashfs_path, i->id) < 0)
                return -ENOMEM;
        return 0;
}

/* A value on one line: Shifter reads the file line by line, so a newline inside a value would
 * start a key of the image's choosing. */
static bool one_line(const char *s) {
        return !strpbrk(s, "\n\r");
}

/* "KEY: a b c" from a JSON array of strings (Docker's Entrypoint and Cmd); nothing if empty. */
static int put_words(FILE *f, const char *key, json_object *array) {
        size_t n = json_object_is_type(array, json_type_array) ? json_object_array_length(array) : 0;

        if (n == 0)
                return 0;
        fprintf(f, "%s:", key);
        for (size_t k = 0; k < n; k++) {
                const char *w = json_object_get_string(json_object_array_get_idx(array, k));
                if (!w || !one_line(w))
                        return -EINVAL;
                fprintf(f, " %s", w);
        }
        fputc('\n', f);
        return 0;
}

static void put_ids(FILE *f, const char *key, const unsigned *ids, size_t n) {
        fprintf(f, "%s: ", key);
        for (size_t k = 0; k < n; k++)
                fprintf(f, "%s%u", k ? "," : "", ids[k]);
        fputc('\n', f);
}

int image_shifter_meta_format(const Image *i, json_object *meta, char **ret) {
        _cleanup_free_ char *text = NULL;
        const char *workdir = json_get_string(meta, "workdir"), *user = json_get_string(meta, "user");
        json_object *env = NULL, *entry = NULL, *cmd = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        (void) json_object_object_get_ex(meta, "env", &env);
        (void) json_object_object_get_ex(meta, "entrypoint", &entry);
        (void) json_object_object_get_ex(meta, "cmd", &cmd);
        if ((workdir && !one_line(workdir)) || (user && !one_line(user)))
                return -EINVAL;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs("FORMAT: squashfs\n", f);
        r = put_words(f, "ENTRY", entry);
        if (r >= 0)
                r = put_words(f, "CMD", cmd);
        if (workdir && *workdir)
                fprintf(f, "WORKDIR: %s\n", workdir);
        if (i->private_image) {
                put_ids(f, "USERACL", (const unsigned *) i->acl_uids, i->n_acl_uids);
                put_ids(f, "GROUPACL", (const unsigned *) i->acl_gids, i->n_acl_gids);
        }
        for (size_t k = 0; r >= 0 && json_object_is_type(env, json_type_array) && k < json_object_array_length(env); k++) {
                const char *kv = json_object_get_string(json_object_array_get_idx(env, k));
                if (!kv || !one_line(kv))
                        r = -EINVAL;
                else
                        fprintf(f, "ENV: %s\n", kv);
        }
        if (user && *user)
                fprintf(f, "USER: %s\n", user);
        if (fclose(f) != 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(text);
        return 0;
}

int image_shifter_meta_write(const Image *i) {
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        char *slash;
        int r;

        if (!i->meta_path)
                return -EINVAL;
        meta = json_object_from_file(i->meta_path);
        if (!meta)
                return -EBADMSG;
        r = image_shifter_meta_path(i, &path);
        if (r < 0)
                return r;
        r = image_shifter_meta_format(i, meta, &text);
        if (r < 0)
                return r;
        slash = strrchr(path, '/');
        *slash = '\0';
        return write_file_atomic(path, slash + 1, text, strlen(text));
}

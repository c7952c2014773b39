/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "image.h"
#include "service.h"

static const char * const image_status_table[_IMAGE_STATUS_MAX] = {
        [IMAGE_PENDING] = "PENDING",
        [IMAGE_PULLING] = "PULLING",
        [IMAGE_CONVERSION] = "CONVERSION",
        [IMAGE_TRANSFER] = "TRANSFER",
        [IMAGE_READY] = "READY",
        [IMAGE_FAILURE] = "FAILURE",
        [IMAGE_EXPIRED] = "EXPIRED",
};

const char *image_status_to_string(ImageStatus s) {
        return s >= 0 && s < _IMAGE_STATUS_MAX ? image_status_table[s] : NULL;
}

ImageStatus image_status_from_string(const char *s) {
        for (ImageStatus i = 0; i < _IMAGE_STATUS_MAX; i++)
                if (streq(image_status_table[i], s))
                        return i;
        return _IMAGE_STATUS_INVALID;
}

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        free(i->id);
        free(i->digest);
        free(i->reference);
        free(i->platform);
        free(i->key);
        free(i->status_message);
        free(i->squashfs_path);
        free(i->meta_path);
        free(i->object_path);
        free(i->acl_uids);
        free(i->acl_gids);
        free(i);
        return NULL;
}

double image_progress(const Image *i) {
        if (i->status == IMAGE_READY)
                return 1.0;
        if (i->status == IMAGE_CONVERSION || i->status == IMAGE_TRANSFER)
                return 0.95;
        if (i->bytes_total == 0)
                return 0.0;
        /* Downloads are the bulk of a pull; conversion gets the last 5%. */
        return 0.9 * (double) i->bytes_done / (double) i->bytes_total;
}

static json_object *json_timestamp(uint64_t usec) {
        char buf[32];
        return usec ? json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec)) : NULL;
}

json_object *image_to_json(const Image *i) {
        json_object *o = json_object_new_object(), *p;

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(i->id));
        json_object_object_add(o, "digest", json_object_new_string(i->digest));
        json_object_object_add(o, "reference", json_object_new_string(i->reference));
        json_object_object_add(o, "platform", json_object_new_string(i->platform));
        json_object_object_add(o, "status", json_object_new_string(image_status_to_string(i->status)));
        json_object_object_add(o, "message", i->status_message ? json_object_new_string(i->status_message) : NULL);
        json_object_object_add(o, "size", json_object_new_int64((int64_t) i->size));
        json_object_object_add(o, "private", json_object_new_boolean(i->private_image));
        json_object_object_add(o, "createdAt", json_timestamp(i->created_usec));
        json_object_object_add(o, "updatedAt", json_timestamp(i->updated_usec));
        json_object_object_add(o, "lastUsedAt", json_timestamp(i->last_used_usec));

        p = json_object_new_object();
        json_object_object_add(p, "fraction", json_object_new_double(image_progress(i)));
        json_object_object_add(p, "bytesDone", json_object_new_int64((int64_t) i->bytes_done));
        json_object_object_add(p, "bytesTotal", json_object_new_int64((int64_t) i->bytes_total));
        json_object_object_add(p, "layersDone", json_object_new_int64(i->layers_done));
        json_object_object_add(p, "layersTotal", json_object_new_int64(i->layers_total));
        json_object_object_add(o, "progress", p);
        return o;
}

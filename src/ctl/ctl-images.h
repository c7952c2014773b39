/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

/* The options of "pull", filled in by gatewayctl.c's option parser. */
extern char *arg_pull_platform;
extern char *arg_pull_credentials_file;
extern bool arg_pull_force;

/* Frees what the options above allocated. */
void images_args_done(void);

/* Calls a Manager method that takes an image id or reference (GetImage, RemoveImage,
 * ExpireImage). An unknown name that looks like the start of an id (as "images" shows it) is
 * resolved to the one visible image whose id starts with it. */
int image_call(sd_bus *bus, const char *method, const char *name, sd_bus_error *error, sd_bus_message **reply);

/* GetImage(name), parsed; logs "Failed to get image 'NAME': ..." on failure. */
int image_get_json(sd_bus *bus, const char *name, json_object **ret);

/* ctl-images.c: the verbs that look and remove. */
int verb_images(int argc, char *argv[], char *tail[]);
int verb_image_show(int argc, char *argv[], char *tail[]);
int verb_image_remove(int argc, char *argv[], char *tail[]);
int verb_image_expire(int argc, char *argv[], char *tail[]);

/* ctl-pull.c: pull, with its progress display. */
int verb_pull(int argc, char *argv[], char *tail[]);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "db-migrations.h"

/* Forward-only: never edit a migration that has shipped, append a new one. Entry i moves the
 * schema from version i to i + 1. */
const char * const db_migrations[] = {
        /* 1: the service registry. The spec is kept as JSON so that new optional fields do not
         * need a schema change; what we query on is in columns. */
        "CREATE TABLE services ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  updated_usec INTEGER NOT NULL"
        ") STRICT;",

        /* 2: images (Shifter's lifecycle) and the references that point at them. id is the hex
         * digest of the platform manifest, so one image has many tags. acl is JSON
         * {"uids":[…],"gids":[…]} for private images, NULL for public ones. */
        "CREATE TABLE images ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  reference TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  message TEXT,"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  squashfs TEXT,"
        "  meta TEXT,"
        "  acl TEXT,"
        "  created_usec INTEGER NOT NULL,"
        "  updated_usec INTEGER NOT NULL,"
        "  last_used_usec INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE image_tags ("
        "  reference TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (reference, platform)"
        ") STRICT;",

        /* 3: jobs: one row per job, its state machine in columns. seq is the submission order
         * (fair share, paging); the job's data lives in its spool directory, not here. */
        "CREATE TABLE jobs ("
        "  seq INTEGER PRIMARY KEY,"
        "  id TEXT NOT NULL UNIQUE,"
        "  service TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  state TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  started_usec INTEGER NOT NULL DEFAULT 0,"
        "  ended_usec INTEGER NOT NULL DEFAULT 0,"
        "  exit_code INTEGER,"
        "  error_code TEXT,"
        "  error_message TEXT"
        ") STRICT;"
        "CREATE INDEX jobs_uid_state ON jobs (uid, state);",

        /* 4: tags that never vanish. Up to here an image row was saved with INSERT OR REPLACE,
         * whose implicit delete fired ON DELETE CASCADE: every re-pull or status change of an
         * image dropped all its tags from disk (memory kept them until the next restart). The
         * code upserts now; the table loses the cascade too, so that no rewrite of an image row
         * can take tags along again (removing an image deletes its tags explicitly).
         * What the lost tags were is stored nowhere else, with one exception: each image keeps
         * the canonical reference it was first pulled as. That tag is put back unless the
         * reference has a tag already; if several images were pulled as the same reference
         * (the tag moved), the one resolved last (updated_usec) gets it. Other tags come back
         * with the next pull of their reference. */
        "CREATE TABLE image_tags_v4 ("
        "  reference TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  image_id TEXT NOT NULL REFERENCES images(id),"
        "  PRIMARY KEY (reference, platform)"
        ") STRICT;"
        "INSERT INTO image_tags_v4 (reference, platform, image_id) SELECT reference, platform, image_id FROM image_tags;"
        "DROP TABLE image_tags;"
        "ALTER TABLE image_tags_v4 RENAME TO image_tags;"
        "CREATE INDEX image_tags_image_id ON image_tags (image_id);"
        "INSERT INTO image_tags (reference, platform, image_id)"
        "  SELECT reference, platform, id FROM images AS i"
        "  WHERE updated_usec = (SELECT MAX(updated_usec) FROM images"
        "                        WHERE reference = i.reference AND platform = i.platform)"
        "  ORDER BY id"
        "  ON CONFLICT DO NOTHING;",

        /* remote access (issue 11): tokens issued by gatewayd (auth-token.c). Only the SHA-256
         * of the secret is kept; id is the public half of the token. A revoked token's row is
         * deleted, an expired one pruned. */
        "CREATE TABLE tokens ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  hash BLOB NOT NULL,"
        "  scope INTEGER NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  expires_usec INTEGER NOT NULL"
        ") STRICT;"
        "CREATE INDEX tokens_uid ON tokens (uid);",

        /* remote access (issue 11): PlanQK client credentials (auth-client.c). A client acts
         * as the local user who created it; only the SHA-256 of its secret is kept. The tokens
         * POST /token mints for a client name it, so that removing the client revokes them. */
        "CREATE TABLE clients ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  name TEXT,"
        "  hash BLOB NOT NULL,"
        "  scope INTEGER NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  last_used_usec INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "CREATE INDEX clients_uid ON clients (uid);"
        "ALTER TABLE tokens ADD COLUMN client_id TEXT;"
        "CREATE INDEX tokens_client_id ON tokens (client_id);",
        /* custom tokens (issue 11): the external user who submitted a job while acting as a shared
         * local account (auth-custom-token.c, "localUser"). With uid it owns the job and is the
         * unit of JobsPerUser, ActiveJobsPerUser and fair share; NULL for local users. */
        "ALTER TABLE jobs ADD COLUMN subject TEXT;",
        /* programs (issue 14, docs/programs.md): a user's uploaded code. id names the directory
         * STATE/programs/ID (its squashfs); spec is JSON (entrypoint, arguments, env, ...).
         * A program job keeps its program's id and title (NULL for service jobs). */
        "CREATE TABLE programs ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  title TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  UNIQUE (uid, title)"
        ") STRICT;"
        "ALTER TABLE jobs ADD COLUMN program_id TEXT;"
        "ALTER TABLE jobs ADD COLUMN program TEXT;",
        /* labs (issue 12): definitions, as the JSON spec a client sent (lab.c), like services. */
        "CREATE TABLE labs ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  updated_usec INTEGER NOT NULL"
        ") STRICT;"
        /* lab instances: spec is the lab's definition as it was when the instance was created. */
        "CREATE TABLE lab_instances ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  lab TEXT NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  state TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  started_usec INTEGER NOT NULL DEFAULT 0,"
        "  expires_usec INTEGER NOT NULL,"
        "  ended_usec INTEGER NOT NULL DEFAULT 0,"
        "  error TEXT,"
        "  removing INTEGER NOT NULL DEFAULT 0"        /* DELETE asked: the row goes once stopped */
        ") STRICT;"
        "CREATE INDEX lab_instances_uid ON lab_instances (uid);",
        /* LabOrchestrator-compatible API (http-laborch.c, laborch-id.c): the integer ids it
         * exposes for our string keys (a lab's name, an instance's id, an image reference, a
         * lab's "<lab>/<member>"), one sequence per kind. Rows are never deleted, so an id is
         * never given to something else. */
        "CREATE TABLE laborch_ids ("
        "  kind TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  id INTEGER NOT NULL,"
        "  PRIMARY KEY (kind, name),"
        "  UNIQUE (kind, id)"
        ") STRICT;",
        /* images per platform: a record per (platform, id), as Shifter's are per system, so that
         * the same image pulled for two platforms is two records. SQLite's table rebuild, with
         * foreign keys on: new tables first (the tags referencing the new images, a reference
         * RENAME keeps), rows copied, old tables dropped child first. A tag that pointed at
         * another platform's record (what the second platform's pull left) is dropped: that
         * platform has no record, and pulls the reference again when it needs it. */
        "CREATE TABLE images_by_platform ("
        "  id TEXT NOT NULL,"
        "  reference TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  message TEXT,"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  squashfs TEXT,"
        "  meta TEXT,"
        "  acl TEXT,"
        "  created_usec INTEGER NOT NULL,"
        "  updated_usec INTEGER NOT NULL,"
        "  last_used_usec INTEGER NOT NULL,"
        "  PRIMARY KEY (platform, id)"
        ") STRICT;"
        "INSERT INTO images_by_platform (id, reference, platform, status, message, size, squashfs, meta, acl,"
        "                                created_usec, updated_usec, last_used_usec)"
        "  SELECT id, reference, platform, status, message, size, squashfs, meta, acl,"
        "         created_usec, updated_usec, last_used_usec FROM images;"
        "CREATE TABLE image_tags_by_platform ("
        "  reference TEXT NOT NULL,"
        "  platform TEXT NOT NULL,"
        "  image_id TEXT NOT NULL,"
        "  PRIMARY KEY (reference, platform),"
        "  FOREIGN KEY (platform, image_id) REFERENCES images_by_platform (platform, id)"
        ") STRICT;"
        "INSERT INTO image_tags_by_platform (reference, platform, image_id)"
        "  SELECT reference, platform, image_id FROM image_tags AS t"
        "  WHERE EXISTS (SELECT 1 FROM images WHERE id = t.image_id AND platform = t.platform);"
        "DROP TABLE image_tags;"
        "DROP TABLE images;"
        "ALTER TABLE images_by_platform RENAME TO images;"
        "ALTER TABLE image_tags_by_platform RENAME TO image_tags;"
        "CREATE INDEX image_tags_image_id ON image_tags (platform, image_id);",
        /* providers' shared programs (docs/programs.md "Providers"): provider is NULL for a
         * user's own program. Titles are unique per owner among own programs and per provider
         * among shared ones, so UNIQUE (uid, title) gives way to two partial indexes (a table
         * rebuild: SQLite cannot drop a constraint; nothing references programs). A program
         * job keeps its program's provider, as it keeps its title. */
        "CREATE TABLE programs_with_provider ("
        "  id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  gid INTEGER NOT NULL,"
        "  title TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  provider TEXT"
        ") STRICT;"
        "INSERT INTO programs_with_provider (id, uid, gid, title, spec, created_usec)"
        "  SELECT id, uid, gid, title, spec, created_usec FROM programs;"
        "DROP TABLE programs;"
        "ALTER TABLE programs_with_provider RENAME TO programs;"
        "CREATE UNIQUE INDEX programs_own_title ON programs (uid, title) WHERE provider IS NULL;"
        "CREATE UNIQUE INDEX programs_provider_title ON programs (provider, title) WHERE provider IS NOT NULL;"
        "ALTER TABLE jobs ADD COLUMN program_provider TEXT;",
        /* A program's own image (docs/programs.md, "Images of programs"): the normalised
         * reference it runs on instead of ProgramImage, NULL = ProgramImage. */
        "ALTER TABLE programs ADD COLUMN image TEXT;",
};

const unsigned db_n_migrations = ELEMENTSOF(db_migrations);

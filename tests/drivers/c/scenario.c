/* The driver-matrix scenario for libmongoc (the C driver).
 *
 *   cc scenario.c $(pkg-config --cflags --libs libmongoc-1.0) -o c-scenario
 *   c-scenario URI DATABASE
 *
 * Prints one JSON line per step and exits non-zero on the first mismatch.
 * tests/integration/test_driver_matrix.py compiles and runs it through
 * mongoguard and approves the held delete of the last step. */

#include <mongoc/mongoc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer than the test takes to approve the hold: the held delete must come
 * back with the server's answer, not a client-side timeout. */
#define SOCKET_TIMEOUT_MS 60000

static void
fail (const char *format, ...)
{
   va_list ap;
   va_start (ap, format);
   fputs ("c scenario: ", stderr);
   vfprintf (stderr, format, ap);
   fputc ('\n', stderr);
   va_end (ap);
   exit (1);
}

#define CHECK(cond, ...)        \
   do {                         \
      if (!(cond)) {            \
         fail (__VA_ARGS__);    \
      }                         \
   } while (0)

/* One JSON line from a BSON document (relaxed extended JSON: plain numbers). */
static void
emit (const bson_t *doc)
{
   char *json = bson_as_relaxed_extended_json (doc, NULL);
   printf ("%s\n", json);
   fflush (stdout);
   bson_free (json);
}

static int64_t
reply_count (const bson_t *reply, const char *key)
{
   bson_iter_t it;
   if (!bson_iter_init_find (&it, reply, key) || !BSON_ITER_HOLDS_NUMBER (&it)) {
      char *json = bson_as_relaxed_extended_json (reply, NULL);
      fail ("reply has no %s: %s", key, json);
   }
   return bson_iter_as_int64 (&it);
}

static int64_t
count_all (mongoc_collection_t *coll)
{
   bson_error_t error;
   bson_t filter = BSON_INITIALIZER;
   int64_t n = mongoc_collection_count_documents (coll, &filter, NULL, NULL, NULL, &error);
   CHECK (n >= 0, "count_documents: %s", error.message);
   bson_destroy (&filter);
   return n;
}

int
main (int argc, char **argv)
{
   if (argc != 3) {
      fprintf (stderr, "usage: c-scenario URI DATABASE\n");
      return 2;
   }
   const char *db_name = argv[2];
   bson_error_t error;
   bson_t reply;

   mongoc_init ();
   {
      bson_t line = BSON_INITIALIZER;
      BSON_APPEND_UTF8 (&line, "step", "version");
      BSON_APPEND_UTF8 (&line, "driver", "libmongoc");
      BSON_APPEND_UTF8 (&line, "version", mongoc_get_version ());
      BSON_APPEND_UTF8 (&line, "libbson", bson_get_version ());
      emit (&line);
      bson_destroy (&line);
   }

   mongoc_uri_t *uri = mongoc_uri_new_with_error (argv[1], &error);
   CHECK (uri, "bad URI: %s", error.message);
   mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SOCKETTIMEOUTMS, SOCKET_TIMEOUT_MS);
   mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 15000);
   mongoc_uri_set_option_as_bool (uri, MONGOC_URI_RETRYWRITES, false);
   mongoc_uri_set_appname (uri, "matrix-libmongoc");
   mongoc_client_t *client = mongoc_client_new_from_uri_with_error (uri, &error);
   CHECK (client, "client: %s", error.message);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);

   /* (1) CRUD */
   mongoc_collection_t *people = mongoc_client_get_collection (client, db_name, "people");
   bson_t *docs[5];
   for (int i = 0; i < 5; i++) {
      char name[8];
      snprintf (name, sizeof name, "p%d", i + 1);
      docs[i] = BCON_NEW ("_id", BCON_INT32 (i + 1), "name", BCON_UTF8 (name), "age", BCON_INT32 (10 * (i + 1)));
   }
   CHECK (mongoc_collection_insert_many (people, (const bson_t **) docs, 5, NULL, &reply, &error),
          "insert_many: %s", error.message);
   int64_t inserted = reply_count (&reply, "insertedCount");
   CHECK (inserted == 5, "insert_many: inserted %lld", (long long) inserted);
   bson_destroy (&reply);
   for (int i = 0; i < 5; i++) {
      bson_destroy (docs[i]);
   }

   bson_t *filter = BCON_NEW ("age", "{", "$gte", BCON_INT32 (30), "}");
   bson_t *find_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (people, filter, find_opts, NULL);
   const bson_t *doc;
   bson_t found = BSON_INITIALIZER;
   bson_t found_arr;
   BSON_APPEND_UTF8 (&found, "step", "crud");
   BSON_APPEND_ARRAY_BEGIN (&found, "found", &found_arr);
   int32_t ids[8];
   int nids = 0;
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t it;
      CHECK (bson_iter_init_find (&it, doc, "_id") && BSON_ITER_HOLDS_INT32 (&it), "find: odd _id");
      CHECK (nids < 8, "find: too many documents");
      ids[nids] = bson_iter_int32 (&it);
      char key[16];
      snprintf (key, sizeof key, "%d", nids);
      BSON_APPEND_INT32 (&found_arr, key, ids[nids]);
      nids++;
   }
   CHECK (!mongoc_cursor_error (cursor, &error), "find: %s", error.message);
   bson_append_array_end (&found, &found_arr);
   CHECK (nids == 3 && ids[0] == 3 && ids[1] == 4 && ids[2] == 5, "find age >= 30: %d documents", nids);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   bson_destroy (find_opts);

   bson_t *selector = BCON_NEW ("_id", BCON_INT32 (2));
   bson_t *update = BCON_NEW ("$set", "{", "age", BCON_INT32 (99), "}");
   CHECK (mongoc_collection_update_one (people, selector, update, NULL, &reply, &error),
          "update_one: %s", error.message);
   int64_t matched = reply_count (&reply, "matchedCount");
   int64_t modified = reply_count (&reply, "modifiedCount");
   CHECK (matched == 1 && modified == 1, "update_one: matched %lld modified %lld",
          (long long) matched, (long long) modified);
   bson_destroy (&reply);
   bson_destroy (update);

   bson_t *one = BCON_NEW ("_id", BCON_INT32 (1));
   CHECK (mongoc_collection_delete_one (people, one, NULL, &reply, &error), "delete_one: %s", error.message);
   int64_t deleted = reply_count (&reply, "deletedCount");
   CHECK (deleted == 1, "delete_one: deleted %lld", (long long) deleted);
   bson_destroy (&reply);
   bson_destroy (one);

   cursor = mongoc_collection_find_with_opts (people, selector, NULL, NULL);
   CHECK (mongoc_cursor_next (cursor, &doc), "find _id 2: nothing");
   {
      bson_iter_t it;
      CHECK (bson_iter_init_find (&it, doc, "age") && bson_iter_as_int64 (&it) == 99,
             "update_one did not stick");
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (selector);

   int64_t remaining = count_all (people);
   CHECK (remaining == 4, "count after CRUD: %lld", (long long) remaining);
   BSON_APPEND_INT64 (&found, "inserted", inserted);
   BSON_APPEND_INT64 (&found, "matched", matched);
   BSON_APPEND_INT64 (&found, "modified", modified);
   BSON_APPEND_INT64 (&found, "deleted", deleted);
   BSON_APPEND_INT64 (&found, "remaining", remaining);
   emit (&found);
   bson_destroy (&found);

   /* (2) delete_many({}) is refused by mongoguard */
   {
      bson_t empty = BSON_INITIALIZER;
      bool ok = mongoc_collection_delete_many (people, &empty, NULL, &reply, &error);
      CHECK (!ok, "delete_many({}) succeeded; it must be blocked");
      char prefix[512];
      snprintf (prefix, sizeof prefix,
                "mongoguard: delete on %s.people blocked by rule 'no-unfiltered-writes'", db_name);
      CHECK (error.code == 13, "delete_many({}): domain %u code %u: %s", error.domain, error.code,
             error.message);
      CHECK (strncmp (error.message, prefix, strlen (prefix)) == 0, "delete_many({}): errmsg %s",
             error.message);
      bson_destroy (&reply);
      bson_destroy (&empty);
      int64_t after = count_all (people);
      CHECK (after == 4, "count after the blocked delete_many: %lld", (long long) after);
      bson_t line = BSON_INITIALIZER;
      BSON_APPEND_UTF8 (&line, "step", "blocked");
      BSON_APPEND_INT32 (&line, "code", (int32_t) error.code);
      BSON_APPEND_UTF8 (&line, "errmsg", error.message);
      BSON_APPEND_INT64 (&line, "remaining", after);
      emit (&line);
      bson_destroy (&line);
   }

   /* (3) a held delete, approved by the test through the admin API */
   mongoc_collection_t *held = mongoc_client_get_collection (client, db_name, "held");
   {
      bson_t *a = BCON_NEW ("_id", BCON_INT32 (1));
      bson_t *b = BCON_NEW ("_id", BCON_INT32 (2));
      const bson_t *two[2] = {a, b};
      CHECK (mongoc_collection_insert_many (held, two, 2, NULL, NULL, &error), "insert into held: %s",
             error.message);
      bson_destroy (a);
      bson_destroy (b);

      char ns[512];
      snprintf (ns, sizeof ns, "%s.held", db_name);
      bson_t line = BSON_INITIALIZER;
      BSON_APPEND_UTF8 (&line, "step", "hold-start");
      BSON_APPEND_UTF8 (&line, "ns", ns);
      emit (&line);
      bson_destroy (&line);

      int64_t started = bson_get_monotonic_time ();
      bson_t *target = BCON_NEW ("_id", BCON_INT32 (1));
      CHECK (mongoc_collection_delete_one (held, target, NULL, &reply, &error), "held delete_one: %s",
             error.message);
      int64_t held_deleted = reply_count (&reply, "deletedCount");
      CHECK (held_deleted == 1, "held delete_one: deleted %lld", (long long) held_deleted);
      bson_destroy (&reply);
      bson_destroy (target);

      bson_init (&line);
      BSON_APPEND_UTF8 (&line, "step", "held-delete");
      BSON_APPEND_INT64 (&line, "deletedCount", held_deleted);
      BSON_APPEND_INT64 (&line, "waitedMs", (bson_get_monotonic_time () - started) / 1000);
      emit (&line);
      bson_destroy (&line);
   }

   mongoc_collection_destroy (held);
   mongoc_collection_destroy (people);
   mongoc_client_destroy (client);
   mongoc_uri_destroy (uri);
   mongoc_cleanup ();
   printf ("{\"step\": \"done\"}\n");
   return 0;
}

package mongoguard.matrix;

import static com.mongodb.client.model.Filters.eq;
import static com.mongodb.client.model.Filters.gte;
import static com.mongodb.client.model.Sorts.ascending;
import static com.mongodb.client.model.Updates.set;

import com.mongodb.ConnectionString;
import com.mongodb.MongoClientSettings;
import com.mongodb.MongoCommandException;
import com.mongodb.MongoException;
import com.mongodb.MongoWriteException;
import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;
import com.mongodb.client.MongoCollection;
import com.mongodb.client.MongoDatabase;
import com.mongodb.client.result.DeleteResult;
import com.mongodb.client.result.InsertManyResult;
import com.mongodb.client.result.UpdateResult;
import com.mongodb.internal.build.MongoDriverVersion;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bson.Document;

/**
 * The driver-matrix scenario for the Java driver (mongodb-driver-sync).
 *
 * <pre>java -jar mongoguard-matrix-java.jar URI DATABASE</pre>
 *
 * Prints one JSON line per step and exits non-zero on the first mismatch.
 * tests/integration/test_driver_matrix.py runs it through mongoguard and
 * approves the held delete of the last step.
 */
public final class Scenario {
    /** Longer than the test takes to approve the hold: the held delete must
     *  come back with the server's answer, not a client-side timeout. */
    private static final int READ_TIMEOUT_SECONDS = 60;

    private static void emit(Document fields) {
        System.out.println(fields.toJson());
        System.out.flush();
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("java scenario: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java -jar mongoguard-matrix-java.jar URI DATABASE");
            System.exit(2);
        }
        String uri = args[0];
        String dbName = args[1];
        emit(new Document("step", "version").append("driver", "java")
                .append("version", MongoDriverVersion.VERSION)
                .append("java", System.getProperty("java.version")));

        MongoClientSettings settings = MongoClientSettings.builder()
                .applyConnectionString(new ConnectionString(uri))
                .applicationName("matrix-java")
                .retryWrites(false)
                .applyToSocketSettings(b -> b.readTimeout(READ_TIMEOUT_SECONDS, TimeUnit.SECONDS))
                .applyToClusterSettings(b -> b.serverSelectionTimeout(15, TimeUnit.SECONDS))
                .build();
        try (MongoClient client = MongoClients.create(settings)) {
            MongoDatabase db = client.getDatabase(dbName);

            // (1) CRUD
            MongoCollection<Document> people = db.getCollection("people");
            List<Document> docs = new ArrayList<>();
            for (int i = 1; i <= 5; i++) {
                docs.add(new Document("_id", i).append("name", "p" + i).append("age", 10 * i));
            }
            InsertManyResult ins = people.insertMany(docs);
            check(ins.getInsertedIds().size() == 5, "insertMany: " + ins);
            List<Integer> ids = new ArrayList<>();
            for (Document d : people.find(gte("age", 30)).sort(ascending("_id"))) {
                ids.add(d.getInteger("_id"));
            }
            check(ids.equals(List.of(3, 4, 5)), "find age >= 30: " + ids);
            UpdateResult upd = people.updateOne(eq("_id", 2), set("age", 99));
            check(upd.getMatchedCount() == 1 && upd.getModifiedCount() == 1, "updateOne: " + upd);
            DeleteResult del = people.deleteOne(eq("_id", 1));
            check(del.getDeletedCount() == 1, "deleteOne: " + del);
            check(people.find(eq("_id", 2)).first().getInteger("age") == 99, "updateOne did not stick");
            long remaining = people.countDocuments();
            check(remaining == 4, "count after CRUD: " + remaining);
            emit(new Document("step", "crud").append("inserted", ins.getInsertedIds().size())
                    .append("found", ids).append("matched", upd.getMatchedCount())
                    .append("modified", upd.getModifiedCount())
                    .append("deleted", del.getDeletedCount()).append("remaining", remaining));

            // (2) deleteMany({}) is refused by mongoguard
            String prefix = "mongoguard: delete on " + dbName
                    + ".people blocked by rule 'no-unfiltered-writes'";
            int code = 0;
            String errmsg = null;
            try {
                people.deleteMany(new Document());
                check(false, "deleteMany({}) succeeded; it must be blocked");
            } catch (MongoCommandException e) {
                code = e.getErrorCode();
                errmsg = e.getErrorMessage();
            } catch (MongoWriteException e) {
                code = e.getError().getCode();
                errmsg = e.getError().getMessage();
            } catch (MongoException e) {
                check(false, "deleteMany({}): " + e.getClass().getName() + ": " + e.getMessage());
            }
            check(code == 13, "deleteMany({}): code " + code + ": " + errmsg);
            check(errmsg.startsWith(prefix), "deleteMany({}): errmsg " + errmsg);
            long after = people.countDocuments();
            check(after == 4, "count after the blocked deleteMany: " + after);
            emit(new Document("step", "blocked").append("code", code).append("errmsg", errmsg)
                    .append("remaining", after));

            // (3) a held delete, approved by the test through the admin API
            MongoCollection<Document> held = db.getCollection("held");
            held.insertMany(List.of(new Document("_id", 1), new Document("_id", 2)));
            emit(new Document("step", "hold-start").append("ns", dbName + ".held"));
            long started = System.nanoTime();
            DeleteResult hd = held.deleteOne(eq("_id", 1));
            check(hd.getDeletedCount() == 1, "held deleteOne: " + hd);
            emit(new Document("step", "held-delete").append("deletedCount", hd.getDeletedCount())
                    .append("waitedMs", (System.nanoTime() - started) / 1_000_000));
        }
        emit(new Document("step", "done"));
    }
}

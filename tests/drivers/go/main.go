// The driver-matrix scenario for the Go driver (go.mongodb.org/mongo-driver/v2).
//
//	go-scenario URI DATABASE
//
// Prints one JSON line per step and exits non-zero on the first mismatch.
// tests/integration/test_driver_matrix.py builds and runs it through
// mongoguard and approves the held delete of the last step.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/version"
)

// Longer than the test takes to approve the hold: the held delete must
// come back with the server's answer, not a client-side timeout.
const operationTimeout = 60 * time.Second

func emit(fields map[string]any) {
	line, err := json.Marshal(fields)
	if err != nil {
		fail("encoding output: %v", err)
	}
	fmt.Println(string(line))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go scenario: "+format+"\n", args...)
	os.Exit(1)
}

func check(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go-scenario URI DATABASE")
		os.Exit(2)
	}
	uri, dbName := os.Args[1], os.Args[2]
	emit(map[string]any{"step": "version", "driver": "go", "version": version.Driver})

	opts := options.Client().ApplyURI(uri).
		SetAppName("matrix-go").
		SetRetryWrites(false).
		SetTimeout(operationTimeout).
		SetServerSelectionTimeout(15 * time.Second)
	client, err := mongo.Connect(opts)
	check(err == nil, "connect: %v", err)
	ctx := context.Background()
	defer client.Disconnect(ctx)
	db := client.Database(dbName)

	// (1) CRUD
	people := db.Collection("people")
	docs := make([]any, 0, 5)
	for i := 1; i <= 5; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("p%d", i)}, {Key: "age", Value: 10 * i}})
	}
	ins, err := people.InsertMany(ctx, docs)
	check(err == nil, "insertMany: %v", err)
	check(len(ins.InsertedIDs) == 5, "insertMany: %d ids", len(ins.InsertedIDs))

	cur, err := people.Find(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 30}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	check(err == nil, "find: %v", err)
	var found []struct {
		ID int32 `bson:"_id"`
	}
	check(cur.All(ctx, &found) == nil, "find: reading the cursor")
	ids := make([]int32, 0, len(found))
	for _, f := range found {
		ids = append(ids, f.ID)
	}
	check(fmt.Sprint(ids) == "[3 4 5]", "find age >= 30: got %v", ids)

	upd, err := people.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 99}}}})
	check(err == nil, "updateOne: %v", err)
	check(upd.MatchedCount == 1 && upd.ModifiedCount == 1, "updateOne: %+v", upd)

	del, err := people.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
	check(err == nil, "deleteOne: %v", err)
	check(del.DeletedCount == 1, "deleteOne: deleted %d", del.DeletedCount)

	var two struct {
		Age int32 `bson:"age"`
	}
	check(people.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&two) == nil, "findOne _id 2")
	check(two.Age == 99, "updated age: %d", two.Age)
	remaining, err := people.CountDocuments(ctx, bson.D{})
	check(err == nil && remaining == 4, "count after CRUD: %d %v", remaining, err)
	emit(map[string]any{"step": "crud", "inserted": len(ins.InsertedIDs), "found": ids,
		"matched": upd.MatchedCount, "modified": upd.ModifiedCount,
		"deleted": del.DeletedCount, "remaining": remaining})

	// (2) deleteMany({}) is refused by mongoguard
	_, err = people.DeleteMany(ctx, bson.D{})
	check(err != nil, "deleteMany({}) succeeded; it must be blocked")
	code, errmsg := serverError(err)
	prefix := fmt.Sprintf("mongoguard: delete on %s.people blocked by rule 'no-unfiltered-writes'", dbName)
	check(code == 13, "deleteMany({}): code %d (%v)", code, err)
	check(strings.HasPrefix(errmsg, prefix), "deleteMany({}): errmsg %q", errmsg)
	after, err := people.CountDocuments(ctx, bson.D{})
	check(err == nil && after == 4, "count after the blocked deleteMany: %d %v", after, err)
	emit(map[string]any{"step": "blocked", "code": code, "errmsg": errmsg, "remaining": after})

	// (3) a held delete, approved by the test through the admin API
	held := db.Collection("held")
	_, err = held.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}})
	check(err == nil, "insert into held: %v", err)
	emit(map[string]any{"step": "hold-start", "ns": dbName + ".held"})
	started := time.Now()
	hd, err := held.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
	check(err == nil, "held deleteOne: %v", err)
	check(hd.DeletedCount == 1, "held deleteOne: deleted %d", hd.DeletedCount)
	emit(map[string]any{"step": "held-delete", "deletedCount": hd.DeletedCount,
		"waitedMs": time.Since(started).Milliseconds()})
	emit(map[string]any{"step": "done"})
}

// serverError returns the code and message of the server's (here:
// mongoguard's) error reply.
func serverError(err error) (int, string) {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Message
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		if len(we.WriteErrors) > 0 {
			return we.WriteErrors[0].Code, we.WriteErrors[0].Message
		}
		if we.WriteConcernError != nil {
			return we.WriteConcernError.Code, we.WriteConcernError.Message
		}
	}
	fail("not a server error: %T %v", err, err)
	return 0, ""
}

// CRUD through the official Node driver, asserting every result.
//
//   node crud.js <mongodb-uri> [database]
//
// Exits 0 when every check holds, 1 on the first mismatch or error (with
// the reason on stderr). The integration suite runs it through the proxy.
'use strict';

const assert = require('node:assert/strict');
const { MongoClient, ObjectId, Long, MongoServerError } = require('mongodb');

const uri = process.argv[2];
const dbName = process.argv[3] || `node_crud_${process.pid}_${Date.now()}`;
if (!uri) {
  console.error('usage: node crud.js <mongodb-uri> [database]');
  process.exit(2);
}

let checks = 0;
function check(actual, expected, what) {
  assert.deepStrictEqual(actual, expected, what);
  checks += 1;
}

// Deterministic ObjectIds, so the expected values can be written down.
const oid = (i) => new ObjectId(i.toString(16).padStart(24, '0'));

async function main() {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: 15000,
    appName: 'mongoguard-node-crud',
  });
  await client.connect();
  try {
    const db = client.db(dbName);
    const hello = await db.admin().command({ hello: 1 });
    check(hello.ok, 1, 'hello ok');
    check(await db.command({ ping: 1 }), { ok: 1 }, 'ping');

    const people = db.collection('people');

    // insert
    const one = await people.insertOne({ _id: oid(1), name: 'Ada', age: 36 });
    check(one, { acknowledged: true, insertedId: oid(1) }, 'insertOne');
    const docs = [];
    for (let i = 2; i <= 1001; i++) {
      docs.push({ _id: oid(i), name: `p${i}`, age: i % 90, group: i % 7, tags: [`t${i % 3}`] });
    }
    const many = await people.insertMany(docs);
    check(many.insertedCount, 1000, 'insertMany count');
    check(many.insertedIds[0], oid(2), 'insertMany first id');
    await assert.rejects(people.insertOne({ _id: oid(1) }), (e) => {
      assert.ok(e instanceof MongoServerError, 'duplicate is a server error');
      assert.equal(e.code, 11000);
      return true;
    });
    checks += 1;

    // find
    check(await people.findOne({ _id: oid(1) }), { _id: oid(1), name: 'Ada', age: 36 }, 'findOne');
    check(await people.findOne({ name: 'nobody' }), null, 'findOne miss');
    const young = await people
      .find({ age: { $lt: 3 } }, { projection: { _id: 0, name: 1, age: 1 } })
      .sort({ age: 1, name: 1 })
      .toArray();
    check(young.length, 34, 'find filter length');
    check(young[0], { name: 'p180', age: 0 }, 'find sort + projection');
    const page = await people.find({}).sort({ _id: 1 }).skip(10).limit(5).toArray();
    check(page.map((d) => d._id), [11, 12, 13, 14, 15].map(oid), 'skip/limit');

    // a cursor that needs many getMore round trips
    let seen = 0;
    let last = -1;
    for await (const d of people.find({}, { batchSize: 9 }).sort({ _id: 1 })) {
      const n = parseInt(d._id.toHexString(), 16);
      assert.ok(n > last, 'cursor order');
      last = n;
      seen += 1;
    }
    check(seen, 1001, 'batched cursor sees everything');

    // counts and distinct
    check(await people.countDocuments({}), 1001, 'countDocuments');
    check(await people.countDocuments({ group: 3 }), 143, 'countDocuments filter');
    check(await people.estimatedDocumentCount(), 1001, 'estimatedDocumentCount');
    check((await people.distinct('group')).sort(), [0, 1, 2, 3, 4, 5, 6], 'distinct');
    check((await people.distinct('tags', { group: 1 })).sort(), ['t0', 't1', 't2'], 'distinct array');

    // update
    check(
      await people.updateOne({ _id: oid(1) }, { $set: { age: 37 }, $push: { tags: 'x' } }),
      { acknowledged: true, modifiedCount: 1, upsertedId: null, upsertedCount: 0, matchedCount: 1 },
      'updateOne',
    );
    const um = await people.updateMany({ group: 2, age: { $lt: 20 } }, { $inc: { age: 100 } });
    check([um.matchedCount, um.modifiedCount], [33, 33], 'updateMany');
    check(await people.countDocuments({ age: { $gte: 100 } }), 33, 'updateMany effect');
    const up = await people.updateOne({ _id: oid(5000) }, { $set: { name: 'new' } }, { upsert: true });
    check([up.upsertedCount, up.upsertedId], [1, oid(5000)], 'upsert');
    const rep = await people.replaceOne({ _id: oid(2) }, { name: 'replaced', long: Long.fromNumber(2 ** 40) });
    check(rep.modifiedCount, 1, 'replaceOne');
    check(
      await people.findOne({ _id: oid(2) }, { promoteLongs: false }),
      { _id: oid(2), name: 'replaced', long: Long.fromNumber(2 ** 40) },
      'replaceOne effect',
    );

    // findAndModify
    const fau = await people.findOneAndUpdate(
      { _id: oid(3) },
      { $set: { flagged: true } },
      { returnDocument: 'after', includeResultMetadata: false },
    );
    check(fau.flagged, true, 'findOneAndUpdate after');
    const fad = await people.findOneAndDelete({ _id: oid(4) });
    check(fad._id, oid(4), 'findOneAndDelete');
    check(await people.findOne({ _id: oid(4) }), null, 'findOneAndDelete effect');

    // aggregate
    const groups = await people
      .aggregate([
        { $match: { _id: { $lte: oid(1001) }, group: { $in: [0, 1] } } },
        { $group: { _id: '$group', n: { $sum: 1 } } },
        { $sort: { _id: 1 } },
      ])
      .toArray();
    check(groups, [{ _id: 0, n: 143 }, { _id: 1, n: 142 }], 'aggregate group');
    const counted = await people.aggregate([{ $match: { group: 6 } }, { $count: 'n' }]).toArray();
    check(counted, [{ n: 143 }], 'aggregate count');

    // indexes
    check(await people.createIndex({ name: 1 }, { name: 'by_name' }), 'by_name', 'createIndex');
    const names = (await people.listIndexes().toArray()).map((i) => i.name).sort();
    check(names, ['_id_', 'by_name'], 'listIndexes');
    await people.dropIndex('by_name');
    check((await people.listIndexes().toArray()).length, 1, 'dropIndex');

    // bulk
    const bulk = await people.bulkWrite([
      { insertOne: { document: { _id: oid(6000), bulk: true } } },
      { updateOne: { filter: { _id: oid(6000) }, update: { $set: { n: 1 } } } },
      { deleteOne: { filter: { _id: oid(6000) } } },
    ]);
    check(
      [bulk.insertedCount, bulk.matchedCount, bulk.modifiedCount, bulk.deletedCount],
      [1, 1, 1, 1],
      'bulkWrite',
    );

    // delete
    check(await people.deleteOne({ _id: oid(1) }), { acknowledged: true, deletedCount: 1 }, 'deleteOne');
    check(await people.deleteOne({ _id: oid(1) }), { acknowledged: true, deletedCount: 0 }, 'deleteOne miss');
    const dm = await people.deleteMany({ group: 5 });
    check(dm.deletedCount, 143, 'deleteMany');
    check(await people.countDocuments({}), 1001 + 1 - 1 - 1 - 143, 'count after deletes');

    // collections
    const colls = (await db.listCollections().toArray()).map((c) => c.name);
    check(colls, ['people'], 'listCollections');

    // server errors come back as errors, not hangs
    await assert.rejects(db.command({ definitelyNotACommand: 1 }), (e) => e.code === 59);
    checks += 1;
  } finally {
    await client.close();
  }
}

main().then(
  () => {
    console.log(`node crud: ${checks} checks passed on ${dbName}`);
    process.exit(0);
  },
  (err) => {
    console.error(`node crud FAILED: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);

// The driver-matrix scenario for the Node.js driver (mongodb 6.x).
//
//   node scenario.js URI DATABASE
//
// Uses the driver installed in tests/node/node_modules. Prints one JSON
// line per step and exits non-zero on the first mismatch.
// tests/integration/test_driver_matrix.py runs it through mongoguard and
// approves the held delete of the last step.
'use strict';

const path = require('path');

const DRIVER = path.resolve(__dirname, '..', '..', 'node', 'node_modules', 'mongodb');
const { MongoClient, MongoServerError } = require(DRIVER);
const DRIVER_VERSION = require(path.join(DRIVER, 'package.json')).version;

// Longer than the test takes to approve the hold: the held delete must come
// back with the server's answer, not a client-side timeout.
const SOCKET_TIMEOUT_MS = 60000;

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function check(ok, what) {
  if (!ok) throw new Error(`node scenario: ${what}`);
}

async function main() {
  if (process.argv.length !== 4) {
    console.error('usage: node scenario.js URI DATABASE');
    process.exit(2);
  }
  const [uri, dbName] = process.argv.slice(2);
  emit({ step: 'version', driver: 'node', version: DRIVER_VERSION });

  const client = new MongoClient(uri, {
    appName: 'matrix-node',
    retryWrites: false,
    socketTimeoutMS: SOCKET_TIMEOUT_MS,
    serverSelectionTimeoutMS: 15000,
  });
  try {
    await client.connect();
    const db = client.db(dbName);

    // (1) CRUD
    const people = db.collection('people');
    const docs = [];
    for (let i = 1; i <= 5; i++) docs.push({ _id: i, name: `p${i}`, age: 10 * i });
    const ins = await people.insertMany(docs);
    check(ins.insertedCount === 5, `insertMany: ${JSON.stringify(ins)}`);
    const ids = (await people.find({ age: { $gte: 30 } }).sort({ _id: 1 }).toArray()).map((d) => d._id);
    check(JSON.stringify(ids) === '[3,4,5]', `find age >= 30: ${JSON.stringify(ids)}`);
    const upd = await people.updateOne({ _id: 2 }, { $set: { age: 99 } });
    check(upd.matchedCount === 1 && upd.modifiedCount === 1, `updateOne: ${JSON.stringify(upd)}`);
    const del = await people.deleteOne({ _id: 1 });
    check(del.deletedCount === 1, `deleteOne: ${JSON.stringify(del)}`);
    check((await people.findOne({ _id: 2 })).age === 99, 'updateOne did not stick');
    const remaining = await people.countDocuments({});
    check(remaining === 4, `count after CRUD: ${remaining}`);
    emit({ step: 'crud', inserted: ins.insertedCount, found: ids, matched: upd.matchedCount,
      modified: upd.modifiedCount, deleted: del.deletedCount, remaining });

    // (2) deleteMany({}) is refused by mongoguard
    const prefix = `mongoguard: delete on ${dbName}.people blocked by rule 'no-unfiltered-writes'`;
    let refused = null;
    try {
      await people.deleteMany({});
    } catch (e) {
      refused = e;
    }
    check(refused !== null, 'deleteMany({}) succeeded; it must be blocked');
    check(refused instanceof MongoServerError, `deleteMany({}): ${refused}`);
    check(refused.code === 13, `deleteMany({}): code ${refused.code}: ${refused.message}`);
    check(refused.message.startsWith(prefix), `deleteMany({}): errmsg ${refused.message}`);
    const after = await people.countDocuments({});
    check(after === 4, `count after the blocked deleteMany: ${after}`);
    emit({ step: 'blocked', code: refused.code, errmsg: refused.message, remaining: after });

    // (3) a held delete, approved by the test through the admin API
    const held = db.collection('held');
    await held.insertMany([{ _id: 1 }, { _id: 2 }]);
    emit({ step: 'hold-start', ns: `${dbName}.held` });
    const started = Date.now();
    const hd = await held.deleteOne({ _id: 1 });
    check(hd.deletedCount === 1, `held deleteOne: ${JSON.stringify(hd)}`);
    emit({ step: 'held-delete', deletedCount: hd.deletedCount, waitedMs: Date.now() - started });
  } finally {
    await client.close();
  }
  emit({ step: 'done' });
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});

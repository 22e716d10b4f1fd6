// The driver-matrix scenario for mongosh.
//
//   mongosh --nodb --quiet --norc --eval "const MATRIX_ARGS = ['URI', 'DATABASE']" --file scenario.js
//
// mongosh has no argv for scripts, so the URI and database name come in
// through the --eval prelude. Prints one JSON line per step; a failed check
// throws, which makes mongosh exit non-zero.
// tests/integration/test_driver_matrix.py runs it through mongoguard and
// approves the held delete of the last step.

function emit(fields) {
  print(JSON.stringify(fields));
}

function check(ok, what) {
  if (!ok) throw new Error(`mongosh scenario: ${what}`);
}

// The Node driver this mongosh runs on (informational; null when its
// package layout is not the expected one).
function bundledDriverVersion() {
  try {
    const path = require('path');
    const fs = require('fs');
    const shellDir = path.dirname(fs.realpathSync(process.argv[1]));
    const provider = require.resolve('@mongosh/service-provider-node-driver/package.json', { paths: [shellDir] });
    return require(require.resolve('mongodb/package.json', { paths: [path.dirname(provider)] })).version;
  } catch (e) {
    return null;
  }
}

check(typeof MATRIX_ARGS !== 'undefined' && MATRIX_ARGS.length === 2,
  'pass --eval "const MATRIX_ARGS = [URI, DATABASE]" before --file');
const [matrixUri, matrixDb] = MATRIX_ARGS;
emit({ step: 'version', driver: 'mongosh', version: version(), nodeDriver: bundledDriverVersion() });

// socketTimeoutMS longer than the test takes to approve the hold: the held
// delete must come back with the server's answer, not a client-side timeout.
const sep = matrixUri.includes('?') ? '&' : '?';
const conn = new Mongo(`${matrixUri}${sep}socketTimeoutMS=60000&retryWrites=false&appName=matrix-mongosh`);
const mdb = conn.getDB(matrixDb);

// (1) CRUD
const people = mdb.getCollection('people');
const docs = [];
for (let i = 1; i <= 5; i++) docs.push({ _id: i, name: `p${i}`, age: 10 * i });
const ins = people.insertMany(docs);
check(Object.keys(ins.insertedIds).length === 5, `insertMany: ${EJSON.stringify(ins)}`);
const ids = people.find({ age: { $gte: 30 } }).sort({ _id: 1 }).toArray().map((d) => d._id);
check(EJSON.stringify(ids) === '[3,4,5]', `find age >= 30: ${EJSON.stringify(ids)}`);
const upd = people.updateOne({ _id: 2 }, { $set: { age: 99 } });
check(upd.matchedCount === 1 && upd.modifiedCount === 1, `updateOne: ${EJSON.stringify(upd)}`);
const del = people.deleteOne({ _id: 1 });
check(del.deletedCount === 1, `deleteOne: ${EJSON.stringify(del)}`);
check(people.findOne({ _id: 2 }).age === 99, 'updateOne did not stick');
const remaining = people.countDocuments({});
check(remaining === 4, `count after CRUD: ${remaining}`);
emit({ step: 'crud', inserted: Object.keys(ins.insertedIds).length, found: ids,
  matched: upd.matchedCount, modified: upd.modifiedCount, deleted: del.deletedCount, remaining });

// (2) deleteMany({}) is refused by mongoguard
const prefix = `mongoguard: delete on ${matrixDb}.people blocked by rule 'no-unfiltered-writes'`;
let refused = null;
try {
  people.deleteMany({});
} catch (e) {
  refused = e;
}
check(refused !== null, 'deleteMany({}) succeeded; it must be blocked');
check(refused.code === 13, `deleteMany({}): code ${refused.code}: ${refused.message}`);
check(refused.message.startsWith(prefix), `deleteMany({}): errmsg ${refused.message}`);
const after = people.countDocuments({});
check(after === 4, `count after the blocked deleteMany: ${after}`);
emit({ step: 'blocked', code: refused.code, errmsg: refused.message, remaining: after });

// (3) a held delete, approved by the test through the admin API
const held = mdb.getCollection('held');
held.insertMany([{ _id: 1 }, { _id: 2 }]);
emit({ step: 'hold-start', ns: `${matrixDb}.held` });
const started = Date.now();
const hd = held.deleteOne({ _id: 1 });
check(hd.deletedCount === 1, `held deleteOne: ${EJSON.stringify(hd)}`);
emit({ step: 'held-delete', deletedCount: hd.deletedCount, waitedMs: Date.now() - started });
conn.close();
emit({ step: 'done' });

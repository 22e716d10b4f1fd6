// A scripted mongosh session: CRUD with assertions.
//
//   mongosh "mongodb://HOST:PORT/<database>?directConnection=true" --quiet --norc --file mongosh_crud.js
//
// `db` is the database named in the URI. Any failed check throws, which
// makes mongosh exit non-zero. The integration suite runs it through the proxy.

function check(actual, expected, what) {
  const a = EJSON.stringify(actual, { relaxed: false });
  const e = EJSON.stringify(expected, { relaxed: false });
  if (a !== e) {
    throw new Error(`${what}: expected ${e}, got ${a}`);
  }
}

const c = db.getCollection('family');

// insert
const one = c.insertOne({ _id: 1, name: 'Grace', role: 'parent' });
check(one.acknowledged, true, 'insertOne acknowledged');
check(one.insertedId, 1, 'insertOne id');
const kids = [];
for (let i = 2; i <= 200; i++) {
  kids.push({ _id: i, name: `kid${i}`, role: 'child', age: i % 18 });
}
check(Object.keys(c.insertMany(kids).insertedIds).length, 199, 'insertMany');
let dup = null;
try {
  c.insertOne({ _id: 1 });
} catch (e) {
  dup = e.code;
}
check(dup, 11000, 'duplicate key');

// find
check(c.findOne({ _id: 1 }), { _id: 1, name: 'Grace', role: 'parent' }, 'findOne');
check(c.countDocuments({ role: 'child' }), 199, 'countDocuments');
check(c.estimatedDocumentCount(), 200, 'estimatedDocumentCount');
check(
  c.find({ age: 17 }, { _id: 0, name: 1 }).sort({ _id: 1 }).limit(3).toArray(),
  [{ name: 'kid17' }, { name: 'kid35' }, { name: 'kid53' }],
  'find filter sort projection limit',
);
check(c.find().batchSize(7).toArray().length, 200, 'batched cursor');
check(c.distinct('role').sort(), ['child', 'parent'], 'distinct');

// update
const u1 = c.updateOne({ _id: 1 }, { $set: { name: 'Grace H.' } });
check([u1.matchedCount, u1.modifiedCount], [1, 1], 'updateOne');
const um = c.updateMany({ age: { $gte: 16 } }, { $set: { adult: true } });
check([um.matchedCount, um.modifiedCount], [22, 22], 'updateMany');
check(c.countDocuments({ adult: true }), 22, 'updateMany effect');
const rep = c.replaceOne({ _id: 2 }, { name: 'replaced' });
check(rep.modifiedCount, 1, 'replaceOne');
check(c.findOne({ _id: 2 }), { _id: 2, name: 'replaced' }, 'replaceOne effect');
const fam = c.findOneAndUpdate({ _id: 3 }, { $inc: { age: 1 } }, { returnDocument: 'after' });
check(fam.age, 4, 'findOneAndUpdate');

// aggregate
check(
  c.aggregate([{ $match: { adult: true } }, { $count: 'n' }]).toArray(),
  [{ n: 22 }],
  'aggregate',
);

// indexes
check(c.createIndex({ name: 1 }), 'name_1', 'createIndex');
check(c.getIndexes().map((i) => i.name).sort(), ['_id_', 'name_1'], 'getIndexes');
c.dropIndex('name_1');
check(c.getIndexes().length, 1, 'dropIndex');

// delete
check(c.deleteOne({ _id: 200 }).deletedCount, 1, 'deleteOne');
check(c.deleteMany({ adult: true }).deletedCount, 22, 'deleteMany');
check(c.countDocuments({}), 177, 'count after deletes');

print(`mongosh crud: all checks passed on ${db.getName()}`);

"""mongoengine through the proxy: the ODM from the incident that started
this project. A `Family` document is saved, queried, updated and deleted
through the proxy, and every effect is checked over a direct connection.
"""

from __future__ import annotations

import datetime

import mongoengine as me
import pytest
from bson import ObjectId

ALIAS = "mongoguard-proxy"


class Member(me.EmbeddedDocument):
    name = me.StringField(required=True)
    born = me.IntField()


class Family(me.Document):
    surname = me.StringField(required=True)
    city = me.StringField()
    members = me.EmbeddedDocumentListField(Member)
    tags = me.ListField(me.StringField())
    created = me.DateTimeField(default=lambda: datetime.datetime(2024, 5, 1, 12, 0))
    meta = {"db_alias": ALIAS, "collection": "family", "indexes": ["surname"]}


@pytest.fixture
def proxied_mongoengine(proxy, db_name, direct_client):
    me.connect(db=db_name, host=proxy.uri, alias=ALIAS, serverSelectionTimeoutMS=15_000,
               uuidRepresentation="standard")
    try:
        yield direct_client[db_name].family
    finally:
        me.disconnect(alias=ALIAS)
        # mongoengine caches the collection handle on the class.
        Family._collection = None
        direct_client.drop_database(db_name)


def make_family(i: int) -> Family:
    return Family(surname=f"Surname{i:03d}", city=["Oslo", "Lima", "Pune"][i % 3],
                  members=[Member(name=f"m{i}-{j}", born=1970 + j) for j in range(i % 4 + 1)],
                  tags=["a"] if i % 2 else ["b", "c"])


def test_family_save_query_delete(proxied_mongoengine):
    direct = proxied_mongoengine

    # save
    families = [make_family(i).save() for i in range(30)]
    assert all(isinstance(f.id, ObjectId) for f in families)
    assert direct.count_documents({}) == 30
    raw = direct.find_one({"_id": families[7].id})
    assert raw["surname"] == "Surname007"
    assert raw["members"] == [{"name": f"m7-{j}", "born": 1970 + j} for j in range(4)]
    assert raw["created"] == datetime.datetime(2024, 5, 1, 12, 0)
    assert "surname_1" in direct.index_information()

    # query
    assert Family.objects.count() == 30
    assert Family.objects(city="Lima").count() == 10
    assert [f.surname for f in Family.objects(city="Oslo").order_by("-surname")[:3]] == [
        "Surname027", "Surname024", "Surname021"]
    got = Family.objects.get(surname="Surname012")
    assert got.id == families[12].id and [m.name for m in got.members] == ["m12-0"]
    assert Family.objects(members__name="m5-1").first().surname == "Surname005"
    assert Family.objects(tags="c").count() == 15
    assert sorted(Family.objects.distinct("city")) == ["Lima", "Oslo", "Pune"]
    assert [f.surname for f in Family.objects.only("surname").order_by("surname").skip(28)] == [
        "Surname028", "Surname029"]
    with pytest.raises(Family.DoesNotExist):
        Family.objects.get(surname="Nobody")

    # update: the save() the incident meant to type, and queryset updates
    got.city = "Quito"
    got.members.append(Member(name="newborn", born=2024))
    got.save()
    raw = direct.find_one({"_id": got.id})
    assert raw["city"] == "Quito" and raw["members"][-1] == {"name": "newborn", "born": 2024}
    assert Family.objects(city="Pune").update(set__city="Pondicherry") == 10
    assert direct.count_documents({"city": "Pondicherry"}) == 10
    assert Family.objects(surname="Surname001").update_one(push__tags="pushed") == 1
    assert direct.find_one({"surname": "Surname001"})["tags"] == ["a", "pushed"]
    Family.objects(surname="Surname003").modify(set__city="Bergen")
    assert direct.find_one({"surname": "Surname003"})["city"] == "Bergen"

    # delete: one document at a time, the shape of the incident, kept short
    for family in Family.objects(city="Lima").order_by("surname")[:4]:
        family.delete()
    assert direct.count_documents({}) == 26
    assert direct.count_documents({"city": "Lima"}) == 6
    families[0].delete()
    assert direct.find_one({"_id": families[0].id}) is None
    # a queryset delete with a filter
    assert Family.objects(city="Pondicherry").delete() == 10
    assert direct.count_documents({}) == 15
    assert Family.objects.count() == 15
    remaining = sorted(d["surname"] for d in direct.find({}, {"surname": 1}))
    assert remaining == sorted(f.surname for f in Family.objects)

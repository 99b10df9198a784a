import { expect, test } from "vitest";
import { v } from "convex/values";
import { chatMessageRecord, storedValues } from "../convex/lib/records";
import { chatMessageRecord as chatMessageValidator, storedFields } from "../convex/lib/validators";
import type { Doc } from "../convex/_generated/dataModel";

test("a record's nullable field is stored as an optional one; other fields stay as they are", () => {
  const stored = storedFields({
    name: v.string(),
    title: v.union(v.string(), v.null()),
    kind: v.union(v.literal("a"), v.literal("b")),
  });
  expect(stored.name).toEqual(v.string());
  expect(stored.title).toEqual(v.optional(v.string()));
  expect(stored.kind).toEqual(v.union(v.literal("a"), v.literal("b")));
});

test("a stored message reads as its record: a field the document leaves out is null or its fallback", () => {
  const doc = {
    _id: "id",
    _creationTime: 1,
    messageId: "msg_1",
    chatSessionId: "chs_1",
    machineId: "mch_1",
    role: "user",
    content: "hi",
    status: "pending",
    timestamp: 2,
    abortRequested: false,
  } as unknown as Doc<"chatMessages">;
  const record = chatMessageRecord(doc);
  expect(Object.keys(record).sort()).toEqual(Object.keys(chatMessageValidator.fields).sort());
  expect(record).toMatchObject({ messageId: "msg_1", abortRequested: false, contentSegments: 0 });
  expect([record.replyTo, record.error, record.agent]).toEqual([null, null, null]);
});

test("a record's values are stored without its nulls; other values, false and 0 included, stay", () => {
  const stored = storedValues({ name: "a", title: null, done: false, count: 0, nested: { size: null } });
  expect(stored).toEqual({ name: "a", done: false, count: 0, nested: { size: null } });
  expect("title" in stored).toBe(false);
});

// A kafkajs (2.2.4, pure JS) consumer group of two members, for
// test_groups.py::test_kafkajs_group_of_two_under_production.
//
// Usage: node kafkajs_group.js BOOTSTRAP TOPIC GROUP COUNT [DEADLINE_S]
//
// Starts two consumers of GROUP subscribed to TOPIC (from the beginning,
// auto-commit on: kafkajs commits after every batch), and a kafkajs
// producer that sends COUNT keyed messages "v<i>" in small chunks: the first
// half while the group forms and rebalances, the second half once both
// members hold partitions. It waits until every message was consumed and
// each partition's committed offset (the OffsetCommit kafkajs reports as
// done) reached its high watermark (ListOffsets through kafkajs' admin),
// then disconnects and prints one JSON object on stdout:
//
//   {"ok": true, "assignments": [[p,...], [p,...]],   // last, per member
//    "joins": [n0, n1], "consumed": [n0, n1],          // per member
//    "distinct": N, "duplicates": d, "missing": [...],
//    "high": {"p": hw}, "committed": {"p": offset}, "errors": [...]}
//
// "ok" is false (exit code 1) when DEADLINE_S (default 60) passed first; the
// object then shows how far it got. Assertions are the caller's.

'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, groupId, countArg, deadlineArg] = process.argv.slice(2)
const count = Number(countArg)
const deadlineMs = Date.now() + 1000 * Number(deadlineArg || 60)
if (!bootstrap || !topic || !groupId || !(count > 0)) {
  console.error('usage: node kafkajs_group.js BOOTSTRAP TOPIC GROUP COUNT [DEADLINE_S]')
  process.exit(2)
}

const errors = []
const kafka = new Kafka({
  clientId: 'cxk-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ level, log }) => {
    if (level <= logLevel.ERROR) errors.push(`${log.message} ${log.error || ''}`.trim())
  },
  retry: { retries: 10, initialRetryTime: 100 },
})

const members = [0, 1].map(index => ({
  index,
  consumer: kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
  }),
  assignment: [],
  joins: 0,
  consumed: 0,
}))

const seen = new Map() // value -> times consumed
const committed = {} // partition -> offset, from COMMIT_OFFSETS events
let high = null // partition -> high watermark, once everything was produced

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function summary(ok) {
  const missing = []
  for (let i = 0; i < count && missing.length < 20; i++) {
    if (!seen.has(`v${i}`)) missing.push(i)
  }
  let duplicates = 0
  for (const n of seen.values()) duplicates += n - 1
  return {
    ok,
    assignments: members.map(m => m.assignment),
    joins: members.map(m => m.joins),
    consumed: members.map(m => m.consumed),
    distinct: seen.size,
    duplicates,
    missing,
    high,
    committed,
    errors: errors.slice(0, 20),
  }
}

function allCommitted() {
  if (high === null) return false
  return Object.entries(high).every(([p, hw]) => hw === 0 || committed[p] === hw)
}

async function produce(producer, from, to) {
  const chunk = Math.max(1, Math.ceil(count / 20))
  for (let start = from; start < to; start += chunk) {
    const messages = []
    for (let i = start; i < Math.min(to, start + chunk); i++) {
      messages.push({ key: `k${i}`, value: `v${i}` })
    }
    await producer.send({ topic, acks: -1, messages })
    await sleep(100)
  }
}

// Both members hold disjoint, non-empty assignments covering `partitions`.
function split(partitions) {
  const all = members.flatMap(m => m.assignment).sort((a, b) => a - b)
  return members.every(m => m.assignment.length > 0) && JSON.stringify(all) === JSON.stringify(partitions)
}

async function main() {
  for (const m of members) {
    const { GROUP_JOIN, COMMIT_OFFSETS, CRASH } = m.consumer.events
    m.consumer.on(GROUP_JOIN, ({ payload }) => {
      m.joins += 1
      m.assignment = (payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    })
    m.consumer.on(COMMIT_OFFSETS, ({ payload }) => {
      for (const t of payload.topics) {
        if (t.topic !== topic) continue
        for (const { partition, offset } of t.partitions) {
          const o = Number(offset)
          if (!(partition in committed) || committed[partition] < o) committed[partition] = o
        }
      }
    })
    m.consumer.on(CRASH, ({ payload }) => errors.push(`consumer ${m.index} crashed: ${payload.error}`))
    await m.consumer.connect()
    await m.consumer.subscribe({ topics: [topic], fromBeginning: true })
    await m.consumer.run({
      eachMessage: async ({ message }) => {
        const value = message.value.toString()
        seen.set(value, (seen.get(value) || 0) + 1)
        m.consumed += 1
      },
    })
  }

  const admin = kafka.admin()
  await admin.connect()
  const partitions = (await admin.fetchTopicOffsets(topic)).map(o => o.partition).sort((a, b) => a - b)

  // The first half while the group forms and rebalances; the second half
  // once both members hold partitions, so that both consume some.
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const half = Math.floor(count / 2)
  await produce(producer, 0, half)
  while (!split(partitions)) {
    if (Date.now() > deadlineMs) return false
    await sleep(50)
  }
  await produce(producer, half, count)
  await producer.disconnect()

  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  high = {}
  for (const { partition, high: hw } of offsets) high[partition] = Number(hw)

  // Done once everything was consumed and committed, the partitions still
  // split between the two members.
  while (!(seen.size === count && allCommitted() && split(partitions))) {
    if (Date.now() > deadlineMs) return false
    await sleep(50)
  }
  return true
}

main()
  .then(async ok => {
    const result = summary(ok)
    await Promise.all(members.map(m => m.consumer.disconnect().catch(e => errors.push(String(e)))))
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(ok ? 0 : 1)
  })
  .catch(e => {
    errors.push(`fatal: ${e && e.stack ? e.stack : e}`)
    process.stdout.write(JSON.stringify(summary(false)) + '\n')
    process.exit(1)
  })

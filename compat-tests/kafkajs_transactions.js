// kafkajs (2.2.4) transactions, for
// test_transactions.py::test_kafkajs_transactions_and_read_committed.
//
// Usage: node kafkajs_transactions.js BOOTSTRAP TOPIC GROUP [DEADLINE_S]
//
// Creates TOPIC with 3 partitions; a transactional producer runs 9
// transactions of 30 messages, aborting every third; then a transaction
// that commits offset 5 of partition 0 for GROUP (sendOffsets) and one
// that tries to commit offset 9 and aborts. Two consumers read TOPIC from
// the beginning, one read_committed (kafkajs' default), one with
// readUncommitted. Prints one JSON object:
//
//   {"ok": true, "committed": n, "uncommitted": n, "expected": [c, all],
//    "groupOffset": "5", "errors": [...]}
//
// "ok" is false (exit code 1) when DEADLINE_S (default 60) passed first.

'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, groupId, deadlineArg] = process.argv.slice(2)
const deadlineMs = Date.now() + 1000 * Number(deadlineArg || 60)
const errors = []
const kafka = new Kafka({
  clientId: 'cxk-kafkajs-txn',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ level, log }) => {
    if (level <= logLevel.ERROR) errors.push(log.message)
  }
})

async function readAll (readUncommitted, expected) {
  const consumer = kafka.consumer({
    groupId: `${groupId}-reader-${readUncommitted ? 'all' : 'committed'}`,
    readUncommitted,
    maxWaitTimeInMs: 100
  })
  let count = 0
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async () => { count += 1 } })
  while (count < expected && Date.now() < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // Anything beyond what is expected would arrive now.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await consumer.disconnect()
  return count
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
  const producer = kafka.producer({
    transactionalId: `kafkajs-${topic}`,
    idempotent: true,
    maxInFlightRequests: 1
  })
  await producer.connect()
  let committed = 0
  let all = 0
  for (let t = 0; t < 9; t++) {
    const txn = await producer.transaction()
    const messages = []
    for (let i = 0; i < 30; i++) {
      messages.push({ partition: i % 3, key: `k${i}`, value: `t${t}-${i}` })
    }
    await txn.send({ topic, messages })
    all += 30
    if (t % 3 === 1) {
      await txn.abort()
    } else {
      await txn.commit()
      committed += 30
    }
  }
  for (const [offset, commit] of [['5', true], ['9', false]]) {
    const txn = await producer.transaction()
    await txn.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic, partitions: [{ partition: 0, offset }] }]
    })
    if (commit) await txn.commit(); else await txn.abort()
  }
  await producer.disconnect()
  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] })
  const partition0 = fetched[0].partitions.find((p) => p.partition === 0)
  await admin.disconnect()
  const result = {
    committed: await readAll(false, committed),
    uncommitted: await readAll(true, all),
    expected: [committed, all],
    groupOffset: partition0 ? partition0.offset : null
  }
  result.ok = Date.now() < deadlineMs
  result.errors = errors
  console.log(JSON.stringify(result))
  process.exit(result.ok ? 0 : 1)
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error), errors }))
  process.exit(1)
})

// RaasNode (the engine, Node only) against the devnet: anvil with our DealStatus and the
// Lotus test server. A job short of copies produces one deal request; the hook "makes" the
// deal (the deal is published and activated on the chain, then recorded with `complete` on
// the contract); the next check sees the job satisfied.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { startDevnet } from './devnet/devnet.mjs'
import { startGateway } from './helpers/gateway.mjs'
import { randomBytes } from './helpers/data.mjs'

const require = createRequire(import.meta.url)
const { backend } = require('./helpers/backend.cjs')
const { RaasNode, DealStatusClient, computeUnixfsCid } = require('raas-node')
const PROOF = JSON.parse(readFileSync(new URL('../core/tests/fixtures/podsi-vectors.json', import.meta.url)))[0].proof
const skip = backend !== 'node' && 'RaasNode is in the Node package only'

let devnet, info, dir, writer
const LOOP_DATA = Buffer.from('engine full loop')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

before(async () => {
  if (skip) return
  // The seeder variant: deals of plain pieces (for retrieval from providers) are recorded
  // with `devnet.seed`; every other deal goes through the production `complete`.
  devnet = await startDevnet({ contract: 'DealStatusSeeder' })
  info = devnet.info
  dir = mkdtempSync(join(tmpdir(), 'raas-engine-'))
  writer = new DealStatusClient({ rpcUrl: info.evmRpc, address: info.dealStatus,
    privateKey: info.accounts[0].privateKey })
})

after(async () => {
  if (skip) return
  await devnet.stop()
  rmSync(dir, { recursive: true, force: true })
})

function config(extra = {}) {
  return {
    store: `sqlite:${join(dir, 'raas.db')}`,
    nodeId: 'js-node',
    dealStatus: { rpcUrl: info.evmRpc, address: info.dealStatus },
    lotus: { url: info.lotusRpc },
    checkIntervalSecs: 1,
    pollIntervalMs: 50,
    backoffBaseSecs: 1,
    ...extra,
  }
}

async function until(what, fn, ms = 30000) {
  const t = Date.now()
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

test('full loop: upload → short → one deal request → the hook re-deals from req.data() → satisfied', { skip }, async () => {
  // No gateways: the data the hook re-deals comes from the node's own block store.
  const node = await RaasNode.open(config())
  assert.equal(node.nodeId, 'js-node')
  const uploaded = await node.upload(LOOP_DATA)
  const cid = uploaded.cid
  assert.equal(cid, computeUnixfsCid(LOOP_DATA))
  let fetched
  const events = []
  node.onVerdict((ev) => events.push(ev))
  const calls = []
  node.onDealRequest(async (req) => {
    calls.push(req)
    // The first delivery fails: the request is retried with backoff, not lost.
    if (calls.length === 1) throw new Error('aggregator busy')
    // The hook fetches the data to re-deal (verified against the CID).
    fetched = Buffer.concat(await (await req.data()).toArray())
    const h = devnet.chain.height
    await devnet.chain.addDeal({ id: 501, provider: 1000, sector: 501, startEpoch: h, endEpoch: h + 500000,
      pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
    await devnet.chain.activate(501)
    const { requestId } = await writer.submit(req.cid)
    await writer.complete(requestId, 501, 1000, PROOF)
    return { requestId }
  })
  const reg = await node.registerJob({ cid, replicationTarget: 1, repairThresholdEpochs: 2880 })
  assert.equal(reg.created, true)
  assert.equal(reg.job.state, 'active')
  assert.equal((await node.registerJob({ cid, replicationTarget: 1, repairThresholdEpochs: 2880 })).created, false)

  node.start()
  await until('satisfied', () => events.find((e) => e.status === 'satisfied'))
  await node.stop()

  const short = events.find((e) => e.status === 'short')
  assert.equal(short.jobId, reg.job.jobId)
  assert.equal(short.shortfall.copiesNeeded, 1)
  assert.equal(short.shortfall.reason, 'replication')
  const done = events.find((e) => e.status === 'satisfied')
  assert.equal(done.previous, 'short')
  assert.deepEqual(done.healthy, [501])
  // One shortfall, one request: delivered on the second attempt, never duplicated.
  assert.equal(calls.length, 2)
  assert.equal(calls[0].idempotencyKey, calls[1].idempotencyKey)
  assert.deepEqual(Object.keys(calls[0]).sort(), ['attempt', 'checkpoint', 'cid', 'copiesNeeded', 'follows',
    'idempotencyKey', 'jobId', 'reason', 'replacing', 'seq'])
  assert.deepEqual([calls[0].attempt, calls[1].attempt, calls[1].seq], [1, 2, 1])
  assert.ok(fetched.equals(LOOP_DATA), 'req.data() gave the verified bytes')
  assert.ok(events.every((e) => e.kind === 'verdict' || e.kind === 'endpoint'))
  const requests = await node.listRequests({ jobId: reg.job.jobId })
  assert.equal(requests.length, 1)
  assert.equal(requests[0].state, 'fulfilled', 'its copy appeared')
  assert.deepEqual(requests[0].fulfilledBy, [501])
  assert.equal(requests[0].attempts, 2)
  assert.ok(requests[0].receipt.requestId > 0)
  const job = await node.getJob(reg.job.jobId)
  assert.equal(job.status, 'satisfied')
  assert.deepEqual(job.verdict.healthy, [501])
  assert.ok(job.checks >= 2)
  const history = await node.jobHistory(job.jobId)
  assert.equal(history[0].status, 'satisfied')
  assert.equal(history.at(-1).status, 'short')

  const status = await node.dealStatus(cid)
  assert.equal(status.activeDeals, 1)
  assert.equal(status.deals[0].health.health.status, 'active')
  assert.equal(status.jobs[0].jobId, job.jobId)
  const stats = await node.stats()
  assert.equal(stats.requestsFulfilled, 1)
  assert.deepEqual(stats.endpoints.map((e) => [e.endpoint, e.up]), [['dealStatus', true], ['lotus', true], ['store', true]])
  assert.equal((await node.listJobs({ status: 'satisfied' })).length, 1)
  await node.close()
})

test('jobs survive reopening; cancel; typed errors', { skip }, async () => {
  let node = await RaasNode.open(config())
  const cid = computeUnixfsCid(Buffer.from('engine reopen'))
  const { job } = await node.registerJob({ cid, replicationTarget: 2 })
  await node.close()
  node = await RaasNode.open(config())
  assert.equal((await node.getJob(job.jobId)).spec.replicationTarget, 2)
  const r = await node.runCycle()
  assert.ok(r.jobsChecked >= 1)
  assert.equal(r.requestsCreated, 1, 'the new job is short of 2 copies; the first job is satisfied')
  const cancelled = await node.cancelJob(job.jobId)
  assert.equal(cancelled.state, 'cancelled')
  assert.equal((await node.listRequests({ jobId: job.jobId, state: 'cancelled' })).length, 1)

  await assert.rejects(node.getJob('job_missing'), (e) => e.code === 'JOB_NOT_FOUND')
  await assert.rejects(node.registerJob({ cid: 'nope', replicationTarget: 1 }), (e) => e.code === 'INVALID_CID')
  await assert.rejects(node.registerJob({ cid, replicationTarget: 99 }),
    (e) => e.code === 'INVALID_JOB' && /replicationTarget/.test(e.message))
  await assert.rejects(node.registerJob({ cid, replicationTarget: 1, colour: 'red' }),
    (e) => e.code === 'INVALID_JOB' && /colour/.test(e.message))
  await assert.rejects(node.listJobs({ state: 'asleep' }), (e) => e.code === 'INVALID_ARGUMENT' && /state/.test(e.message))
  await node.close()
  await assert.rejects(RaasNode.open({ ...config(), batchSize: 0 }),
    (e) => e.code === 'INVALID_OPTIONS' && /batchSize/.test(e.message))
  await assert.rejects(RaasNode.open({ ...config(), store: 'mysql://x' }), (e) => e.code === 'INVALID_STORE_URL')
  await assert.rejects(RaasNode.open({ ...config(), store: 'postgres://u:hunter2@127.0.0.1:1/db' }),
    (e) => e.code === 'STORE_UNAVAILABLE' && !e.message.includes('hunter2'))
})

test('registerJobs: many in one transaction, all or none', { skip }, async () => {
  const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'batch.db')}` }))
  const specs = Array.from({ length: 50 }, (_, i) => ({ cid: computeUnixfsCid(Buffer.from(`batch ${i}`)), replicationTarget: 2 }))
  const regs = await node.registerJobs(specs)
  assert.equal(regs.length, 50)
  assert.ok(regs.every((r) => r.created))
  await assert.rejects(node.registerJobs([...specs, { cid: 'nope', replicationTarget: 1 }]),
    (e) => e.code === 'INVALID_JOB' && /jobs\[50\]\.cid/.test(e.message))
  await assert.rejects(node.registerJobs([{ cid: specs[0].cid, replicationTarget: 0 }]),
    (e) => e.code === 'INVALID_JOB' && /jobs\[0\]\.replicationTarget/.test(e.message))
  const again = await node.registerJobs(specs.slice(0, 10))
  assert.ok(again.every((r) => !r.created))
  assert.equal((await node.stats()).active, 50, 'the rejected batch wrote nothing')
  await node.close()
})

test('a started node keeps the process alive until stop()', { skip }, async () => {
  const { spawn } = await import('node:child_process')
  const script = `
    const { RaasNode } = require('raas-node')
    RaasNode.open(${JSON.stringify(config({ store: `sqlite:${join(dir, 'alive.db')}`, nodeId: 'alive' }))}).then((n) => {
      n.start()
      console.log('started')
      process.on('SIGTERM', () => n.stop().then(() => console.log('stopped')))
    })`
  const child = spawn(process.execPath, ['-e', script], { cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  await until('start', () => out.includes('started'))
  await sleep(1000)
  assert.equal(child.exitCode, null, 'nothing but the node keeps it alive')
  const exited = new Promise((r) => child.on('exit', r))
  child.kill('SIGTERM')
  assert.equal(await exited, 0)
  assert.match(out, /stopped/)
})

/** Makes deal `id` for `cid`: published and activated on the chain, recorded on the contract. */
async function makeDeal(cid, id) {
  const h = devnet.chain.height
  await devnet.chain.addDeal({ id, provider: 1000, sector: id, startEpoch: h, endEpoch: h + 500000,
    pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
  await devnet.chain.activate(id)
  const { requestId } = await writer.submit(cid)
  await writer.complete(requestId, id, 1000, PROOF)
  return requestId
}

/** Calls a `Devnet.*` control of the Lotus test server. */
async function control(method, params) {
  const res = await fetch(info.lotusRpc, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  const body = await res.json()
  assert.equal(body.error, undefined, `${method}: ${JSON.stringify(body.error)}`)
  return body.result
}

/** Deal `id` of `piece` ({ pieceCid, pieceSize }) for `cid` at `miner`. */
async function makePieceDeal(cid, id, miner, piece) {
  const h = devnet.chain.height
  await devnet.chain.addDeal({ id, provider: miner, sector: id, startEpoch: h, endEpoch: h + 500000, ...piece })
  await devnet.chain.activate(id)
  // The deal holds the CAR's own piece, not an aggregate, which `complete` refuses.
  await devnet.seed(cid, id, miner)
}

test('full loop from storage providers: a deal is lost; the hook re-deals from req.data(), verified from the other provider\'s piece', { skip }, async () => {
  const file = Buffer.from(randomBytes(3 * 262144 + 7, 77))
  const path = join(dir, 'sp-file.bin')
  writeFileSync(path, file)
  const gw = await startGateway([path])
  try {
    const cid = gw.roots[path]
    assert.equal(cid, computeUnixfsCid(file))
    // The piece as @web3-storage/data-segment computes it; both providers serve it only at
    // /piece/ (their /ipfs/ answers 404), at the address their StateMinerInfo gives.
    const piece = await (await fetch(`${gw.url}/pieceinfo/${cid}`)).json()
    const port = new URL(gw.url).port
    for (const miner of [1101, 1102]) {
      await control('Devnet.SetMinerAddrs', [miner, [`/ip4/127.0.0.1/tcp/${port}/http/http-path/pieceonly`]])
    }
    await makePieceDeal(cid, 1201, 1101, piece)
    await makePieceDeal(cid, 1202, 1102, piece)
    // No gateways and an empty block store: the node knows the data only through its deals.
    const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'sp.db')}` }))
    const fetched = []
    node.onDealRequest(async (req) => {
      fetched.push(Buffer.concat(await (await req.data()).toArray()))
      await makePieceDeal(req.cid, 1203, 1102, piece)
      return { made: 1 }
    })
    const { job } = await node.registerJob({ cid, replicationTarget: 2 })
    assert.equal((await node.runCycle()).satisfied, 1)
    await devnet.chain.terminate(1201)
    assert.equal((await cycle(node)).requestsCreated, 1, 'the lost deal asks for a copy')
    assert.equal((await node.deliver()).delivered, 1)
    assert.equal(fetched.length, 1)
    assert.ok(fetched[0].equals(file), `req.data() gave ${fetched[0].length} verified bytes`)
    assert.equal((await cycle(node)).satisfied, 1)
    const [req] = await node.listRequests({ jobId: job.jobId })
    assert.deepEqual([req.state, req.fulfilledBy], ['fulfilled', [1203]])
    const asked = (await control('Devnet.RequestLog', [])).filter((c) => c.method === 'Filecoin.StateMinerInfo')
    assert.ok(asked.some((c) => c.params[0] === 'f01102'), 'the provider was looked up on chain')
    await node.close()
  } finally {
    gw.stop()
  }
})

/** One sweep once the job is due again (checks are due a second apart here). */
async function cycle(node) {
  await sleep(1100)
  return node.runCycle()
}

test('lifecycle: a lost replacement is replaced again (three requests), then satisfied', { skip }, async () => {
  const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'lineage.db')}` }))
  const cid = computeUnixfsCid(Buffer.from('engine lineage'))
  let next = 801
  const made = []
  node.onDealRequest(async (req) => {
    for (let i = 0; i < req.copiesNeeded; i++) { const id = next++; await makeDeal(req.cid, id); made.push(id) }
    return { made: req.copiesNeeded }
  })
  const { job } = await node.registerJob({ cid, replicationTarget: 2 })
  assert.equal((await cycle(node)).requestsCreated, 1)
  assert.equal((await node.deliver()).delivered, 1)
  assert.equal((await cycle(node)).satisfied, 1)
  // A copy is lost and replaced; then the replacement is lost too: the same situation as the
  // first loss, yet a request of its own.
  for (const lost of [made[0], null]) {
    const victim = lost ?? made.at(-1)
    await devnet.chain.terminate(victim)
    const r = await cycle(node)
    assert.equal(r.requestsCreated, 1, `losing ${victim} asks again`)
    assert.equal((await node.deliver()).delivered, 1)
    assert.equal((await cycle(node)).satisfied, 1)
  }
  const reqs = await node.listRequests({ jobId: job.jobId })
  assert.deepEqual(reqs.map((r) => [r.seq, r.copiesNeeded, r.state]),
    [[1, 2, 'fulfilled'], [2, 1, 'fulfilled'], [3, 1, 'fulfilled']])
  assert.equal(new Set(reqs.map((r) => r.idempotencyKey)).size, 3)
  assert.deepEqual(reqs[2].fulfilledBy, [made.at(-1)])
  assert.equal((await node.getJob(job.jobId)).requests, 3)
  await node.close()
})

test('lifecycle: a repair-only job asks once for a lost deal, however many checks follow', { skip }, async () => {
  const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'repair.db')}` }))
  const cid = computeUnixfsCid(Buffer.from('engine repair only'))
  await makeDeal(cid, 901)
  await makeDeal(cid, 902)
  let calls = 0
  node.onDealRequest(async () => { calls++; return { queued: true } }) // deals come later
  const { job } = await node.registerJob({ cid, repairThresholdEpochs: 100 })
  assert.equal((await cycle(node)).satisfied, 1)
  assert.equal((await node.getJob(job.jobId)).target, 2, 'the copies it had at its first check')
  await devnet.chain.terminate(901)
  assert.equal((await cycle(node)).requestsCreated, 1)
  await node.deliver()
  for (let i = 0; i < 4; i++) {
    const r = await cycle(node)
    assert.equal(r.requestsCreated, 0, 'the delivered request awaits fulfilment')
    await node.deliver()
  }
  assert.equal(calls, 1)
  const [req] = await node.listRequests({ jobId: job.jobId })
  assert.deepEqual([req.reason, req.replacing, req.state], ['repair', [901], 'delivered'])
  assert.ok(req.fulfilByEpoch > devnet.chain.height)
  await makeDeal(cid, 903)
  assert.equal((await cycle(node)).satisfied, 1)
  const done = await node.listRequests({ jobId: job.jobId })
  assert.deepEqual(done.map((r) => [r.state, r.fulfilledBy]), [['fulfilled', [903]]])
  assert.equal((await node.getJob(job.jobId)).target, 2, 'never grown from the deal history')
  await node.close()
})

test('lifecycle: cancel, register again: a new request; a hook refuses with HOOK_REJECTED', { skip }, async () => {
  const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'cancel.db')}` }))
  const cid = computeUnixfsCid(Buffer.from('engine cancel again'))
  const spec = { cid, replicationTarget: 1 }
  const { job } = await node.registerJob(spec)
  assert.equal((await cycle(node)).requestsCreated, 1)
  await node.cancelJob(job.jobId)
  await node.registerJob(spec)
  assert.equal((await cycle(node)).requestsCreated, 1, 'the cancelled request does not block the new one')
  const reqs = await node.listRequests({ jobId: job.jobId })
  assert.deepEqual(reqs.map((r) => [r.seq, r.state]), [[1, 'cancelled'], [2, 'pending']])
  assert.notEqual(reqs[0].idempotencyKey, reqs[1].idempotencyKey)

  node.onDealRequest(async () => {
    throw Object.assign(new Error('no provider takes this piece'), { code: 'HOOK_REJECTED' })
  })
  const d = await node.deliver()
  assert.deepEqual([d.failed, d.dead], [1, 1], 'refused for good at the first attempt')
  const [dead] = await node.listRequests({ jobId: job.jobId, state: 'dead' })
  assert.equal(dead.attempts, 1)
  assert.match(dead.lastError, /HOOK_REJECTED: no provider takes this piece/)
  // A dead request holds its copies: no new request until the operator acts.
  assert.equal((await cycle(node)).requestsCreated, 0)
  assert.equal(await node.retryRequest(dead.idempotencyKey), true)
  node.onDealRequest(async () => ({ ok: true }))
  assert.equal((await node.deliver()).delivered, 1)
  await node.close()
})

const pgUrl = process.env.RAAS_TEST_POSTGRES_URL
const pgSkip = skip || (!pgUrl && 'needs PostgreSQL: RAAS_TEST_POSTGRES_URL (scripts/test-all.sh sets it)')

test('two node processes on PostgreSQL: a hook slower than the lease is delivered once', { skip: pgSkip }, async () => {
  const { spawn } = await import('node:child_process')
  const log = join(dir, 'slow-hook.log')
  const base = config({ store: pgUrl, leaseSecs: 3, hookTimeoutSecs: 30, pollIntervalMs: 100 })
  const cid = computeUnixfsCid(Buffer.from(`engine slow hook ${Date.now()}`))
  const admin = await RaasNode.open({ ...base, nodeId: 'pg-admin' })
  const { job } = await admin.registerJob({ cid, replicationTarget: 1 })
  const script = `
    const fs = require('node:fs')
    const { RaasNode } = require('raas-node')
    const [cfg, log, cid] = [JSON.parse(process.argv[1]), process.argv[2], process.argv[3]]
    RaasNode.open(cfg).then((n) => {
      n.onDealRequest(async (req) => {
        if (req.cid !== cid) return { other: true }
        fs.appendFileSync(log, 'start ' + cfg.nodeId + ' ' + req.idempotencyKey + '\\n')
        await new Promise((r) => setTimeout(r, 8000)) // longer than two leases
        fs.appendFileSync(log, 'end ' + cfg.nodeId + '\\n')
        return { by: cfg.nodeId }
      })
      n.start()
      process.on('SIGTERM', () => n.stop().then(() => n.close()).then(() => process.exit(0)))
    })`
  const children = ['p1', 'p2'].map((nodeId) => spawn(process.execPath,
    ['-e', script, JSON.stringify({ ...base, nodeId }), log, cid],
    { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'inherit', 'inherit'] }))
  try {
    const read = () => { try { return readFileSync(log, 'utf8') } catch { return '' } }
    await until('the hook to finish', () => read().includes('end '), 60000)
    await sleep(4000) // past another lease: a second delivery would have started by now
    const starts = read().split('\n').filter((l) => l.startsWith('start '))
    assert.equal(starts.length, 1, read())
    const [req] = await admin.listRequests({ jobId: job.jobId })
    assert.equal(req.state, 'delivered')
    assert.equal(req.attempts, 1)
  } finally {
    await Promise.all(children.map((c) => new Promise((r) => { c.on('exit', r); c.kill('SIGTERM') })))
    await admin.close()
  }
})

test("the reference kit's frontend flow: form post to /api/register_job, poll /api/deal_status until deals show; SSE sees it", { skip }, async () => {
  const { default: express } = await import('express')
  const http = await import('node:http')
  const node = await RaasNode.open(config({ store: `sqlite:${join(dir, 'kit.db')}`, nodeId: 'js-kit' }))
  const key = await node.createApiKey({ name: 'frontend', scope: 'client' })
  const other = await node.createApiKey({ name: 'other', scope: 'client' })
  node.onDealRequest(async (req) => {
    const h = devnet.chain.height
    await devnet.chain.addDeal({ id: 611, provider: 1000, sector: 611, startEpoch: h, endEpoch: h + 500000,
      pieceCid: 'baga6ea4seaqd6rv4mrnqpi7kfqcpazxzhho7pytj3v3woh46dzq2hi3zpztfcjy', pieceSize: 2 ** 35 })
    await devnet.chain.activate(611)
    const { requestId } = await writer.submit(req.cid)
    await writer.complete(requestId, 611, 1000, PROOF)
    return { requestId }
  })
  // The kit ran Express: mount the node where its API was.
  const app = express()
  app.use(node.handler())
  const server = http.createServer(app)
  const url = await new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}`)))
  const sse = await node.serve({ port: 0 })
  const auth = { authorization: `Bearer ${key.key}` }
  const cid = computeUnixfsCid(Buffer.from('kit frontend flow'))
  try {
    // Streams opened before anything happens: ours, and another tenant's.
    const mine = await fetch(`${sse.url}/events`, { headers: auth })
    const theirs = await fetch(`${sse.url}/events`, { headers: { authorization: `Bearer ${other.key}` } })
    assert.equal(mine.status, 200)

    // The kit's form, as its script.js posts it.
    const form = new URLSearchParams({ cid, jobType: 'replication', replicationTarget: '1', aggregator: 'lighthouse' })
    let r = await fetch(`${url}/api/register_job`, { method: 'POST', body: form, headers: auth })
    assert.equal(r.status, 201)
    assert.equal((await r.json()).message, 'Job registered successfully.')
    r = await fetch(`${url}/api/deal_status?cid=${cid}`, { headers: auth })
    assert.equal(r.status, 200)
    assert.equal((await r.json()).dealInfos, undefined, 'no deals yet: the frontend keeps polling')

    node.start()
    const status = await until('dealInfos', async () => {
      const s = await (await fetch(`${url}/api/deal_status?cid=${cid}`, { headers: auth })).json()
      return s.dealInfos ? s : null
    })
    // The deal shows on the contract first; the next check then finds the job satisfied.
    await until('satisfied', async () => (await node.listJobs({ cid }))[0]?.status === 'satisfied')
    await node.stop()
    assert.equal(status.dealInfos[0].dealId, 611)
    assert.equal(status.dealInfos[0].storageProvider, 'f01000')
    assert.deepEqual(status.currentActiveDeals, [[611, 1000]])
    assert.equal(status.jobType, 'replication')
    assert.equal(status.replicationTarget, 1)

    // The stream saw the job go short, its request made and delivered, then satisfied.
    const events = await readSse(mine, (evs) => evs.some((e) => e.event === 'verdict' && e.data.data.status === 'satisfied'))
    const jobId = events[0].data.jobId
    assert.ok(events.every((e) => e.data.jobId === jobId && e.data.tenant === key.tenant))
    const seen = events.map((e) => `${e.event}:${e.data.data.status ?? e.data.data.state}`)
    for (const want of ['verdict:short', 'request:pending', 'request:delivered', 'verdict:satisfied', 'request:fulfilled']) {
      assert.ok(seen.includes(want), `${want} in ${seen}`)
    }
    // Resuming after the first event gives the rest, in order, nothing twice.
    const again = await readSse(await fetch(`${sse.url}/events`, { headers: { ...auth, 'last-event-id': String(events[0].id) } }),
      (evs) => evs.length >= events.length - 1)
    assert.deepEqual(again.map((e) => e.id), events.slice(1).map((e) => e.id).slice(0, again.length))
    // The other tenant saw nothing of it.
    const none = await readSse(theirs, () => false, 300)
    assert.deepEqual(none, [])
  } finally {
    await new Promise((r) => server.close(r))
    await sse.close()
    await node.close()
  }
})

/** Reads SSE frames until `done(events)` or `ms` pass; then cancels the stream. */
async function readSse(res, done, ms = 15000) {
  const reader = res.body.getReader()
  const dec = new TextDecoder()
  const events = []
  let buf = ''
  const deadline = Date.now() + ms
  while (!done(events) && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), sleep(Math.max(1, deadline - Date.now())).then(() => null)])
    if (!chunk || chunk.done) break
    buf += dec.decode(chunk.value, { stream: true })
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const ev = {}
      for (const line of frame.split('\n')) {
        const [k, ...v] = line.split(':')
        const val = v.join(':').trim()
        if (k === 'id') ev.id = Number(val)
        else if (k === 'event') ev.event = val
        else if (k === 'data') ev.data = JSON.parse(val)
      }
      if (ev.id !== undefined) events.push(ev)
    }
  }
  await reader.cancel().catch(() => {})
  return events
}

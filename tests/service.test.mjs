// The HTTP API served from Node (`node.serve()`): the core's router, reached with Node's
// own fetch. Node only: the browser package has no server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { backend } = require('./helpers/backend.cjs')
const raas = require('raas-node')
const skip = backend !== 'node' && 'the HTTP API is in the Node package only'

const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

test('node.serve(): register, read, page and cancel over HTTP; typed errors', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raas-service-'))
  const node = await raas.RaasNode.open({
    store: `sqlite:${join(dir, 'n.db')}`,
    nodeId: 'js-service',
    dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
  })
  const server = await node.serve({ port: 0 })
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    const post = (body, type = 'application/json') => fetch(`${server.url}/register_jobs`, {
      method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    let r = await post({ cid: CID, replicationTarget: 2 })
    assert.equal(r.status, 201)
    const { registrations: [reg] } = await r.json()
    assert.equal(reg.created, true)
    // The same job through the library: one job, not two.
    const same = await node.registerJob({ cid: CID, replicationTarget: 2 })
    assert.equal(same.job.jobId, reg.job.jobId)
    assert.equal(same.created, false)

    r = await post({ jobs: [{ cid: CID, replicationTarget: 99 }] })
    assert.equal(r.status, 400)
    assert.deepEqual(Object.keys((await r.json()).error).sort(), ['code', 'field', 'message'])
    r = await post('cid=x', 'application/x-www-form-urlencoded')
    assert.equal(r.status, 415)
    assert.equal((await r.json()).error.code, 'UNSUPPORTED_MEDIA_TYPE')

    r = await fetch(`${server.url}/jobs/${reg.job.jobId}`)
    assert.equal(r.status, 200)
    assert.equal((await r.json()).spec.cid, CID)
    r = await fetch(`${server.url}/jobs?cid=${CID}`)
    assert.equal((await r.json()).jobs.length, 1)
    r = await fetch(`${server.url}/jobs/job_nope`)
    assert.equal(r.status, 404)
    assert.equal((await r.json()).error.code, 'JOB_NOT_FOUND')
    r = await fetch(`${server.url}/jobs/${reg.job.jobId}`, { method: 'DELETE' })
    assert.equal((await r.json()).state, 'cancelled')
    assert.equal((await node.getJob(reg.job.jobId)).state, 'cancelled', 'the same store as the library')

    const doc = await (await fetch(`${server.url}/openapi.json`)).json()
    assert.match(doc.openapi, /^3\.1/)
    assert.ok(doc.paths['/register_jobs'].post)

    await assert.rejects(node.serve({ host: '0.0.0.0', port: 0 }),
      (e) => e.code === 'INVALID_ARGUMENT' && /loopback/.test(e.message))
    await assert.rejects(node.serve({ port: 'eighty' }), (e) => e.code === 'INVALID_ARGUMENT')
  } finally {
    await server.close()
    await node.close()
    rmSync(dir, { recursive: true, force: true })
  }
  await assert.rejects(fetch(`${server.url}/healthz`), 'closed')
})

test('node.handler() mounted in an Express app and in node:http: the same API, beside the host\'s own routes', { skip }, async () => {
  const { default: express } = await import('express')
  const http = await import('node:http')
  const dir = mkdtempSync(join(tmpdir(), 'raas-handler-'))
  const node = await raas.RaasNode.open({
    store: `sqlite:${join(dir, 'n.db')}`,
    nodeId: 'js-handler',
    dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
    http: { bodyLimitBytes: 4096 },
  })
  const app = express()
  app.get('/hello', (req, res) => res.json({ from: 'the host' }))
  app.use('/raas', node.handler())
  const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}`)))
  const expressServer = http.createServer(app)
  const plain = http.createServer(node.handler())
  const [eu, pu] = [await listen(expressServer), await listen(plain)]
  try {
    assert.deepEqual(await (await fetch(`${eu}/hello`)).json(), { from: 'the host' })
    let r = await fetch(`${eu}/raas/register_jobs`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ cid: CID, replicationTarget: 1 }]) })
    assert.equal(r.status, 201)
    assert.match(r.headers.get('content-type'), /application\/json/)
    const id = (await r.json()).registrations[0].job.jobId
    r = await fetch(`${eu}/raas/jobs/${id}`)
    assert.equal((await r.json()).jobId, id)
    r = await fetch(`${eu}/raas/jobs?limit=0`)
    assert.equal(r.status, 400)
    assert.equal((await r.json()).error.field, 'limit')
    // The body limit holds through the adapter; nothing is stored.
    r = await fetch(`${eu}/raas/register_jobs`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid: CID, replicationTarget: 2, pad: 'x'.repeat(100_000) }) })
    assert.equal(r.status, 413)
    assert.equal((await r.json()).error.code, 'PAYLOAD_TOO_LARGE')
    // An upload over the limit is refused whole, never stored cut short under another CID;
    // one within it is stored.
    const big = Buffer.alloc(6000, 7)
    r = await fetch(`${eu}/raas/upload`, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(r.status, 413)
    assert.equal((await r.json()).error.code, 'PAYLOAD_TOO_LARGE')
    for (const n of [4097, 4096]) {
      r = await fetch(`${eu}/raas/ipfs/${raas.computeCids(big.subarray(0, n)).cid}`, { headers: { accept: 'application/vnd.ipld.raw' } })
      assert.equal(r.status, 404, `no cut copy of ${n} bytes was stored`)
    }
    r = await fetch(`${eu}/raas/upload`, { method: 'POST', body: big.subarray(0, 4096), headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(r.status, 201)
    assert.equal((await r.json()).cid, raas.computeCids(big.subarray(0, 4096)).cid)
    // The same router at the root of a plain node:http server.
    r = await fetch(`${pu}/jobs?cid=${CID}`)
    assert.equal((await r.json()).jobs.length, 1)
    r = await fetch(`${pu}/openapi.json`)
    assert.match((await r.json()).openapi, /^3\.1/)
  } finally {
    await new Promise((r) => expressServer.close(r))
    await new Promise((r) => plain.close(r))
    await node.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('API keys and tenants through node.handler() in Express: 401, 403, 404, 429, 413, 415, 400', { skip }, async () => {
  const { default: express } = await import('express')
  const http = await import('node:http')
  const dir = mkdtempSync(join(tmpdir(), 'raas-keys-'))
  const node = await raas.RaasNode.open({
    store: `sqlite:${join(dir, 'n.db')}`,
    nodeId: 'js-keys',
    dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
    http: { rateLimitPerSecond: 1000, rateLimitBurst: 1000 },
  })
  const app = express()
  app.use('/raas', node.handler())
  const server = http.createServer(app)
  const url = await new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}/raas`)))
  const cid = (i) => raas.computeUnixfsCid(Buffer.from(`keys ${i}`))
  const call = (path, { key, method = 'GET', body, type = 'application/json' } = {}) => fetch(`${url}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  try {
    const alice = await node.createApiKey({ name: 'alice', scope: 'client', maxJobs: 2 })
    const bob = await node.createApiKey({ name: 'bob', scope: 'client', tenant: 'team-b' })
    const slow = await node.createApiKey({ name: 'slow', scope: 'client', ratePerSecond: 1 })
    const admin = await node.createApiKey({ name: 'ops', scope: 'admin' })
    assert.deepEqual(Object.keys(alice).sort(), ['id', 'key', 'name', 'scope', 'tenant'])
    assert.equal(bob.tenant, 'team-b')
    const listed = await node.listApiKeys()
    assert.equal(listed.length, 4)
    assert.ok(!JSON.stringify(listed).includes(alice.key.slice(22)), 'secrets are never listed')

    let r = await call('/jobs')
    assert.equal(r.status, 401)
    assert.equal((await r.json()).error.code, 'UNAUTHENTICATED')
    r = await call('/healthz')
    assert.equal(r.status, 200, 'probes stay open')

    r = await call('/register_jobs', { key: alice.key, method: 'POST', body: { cid: cid(1), replicationTarget: 1 } })
    assert.equal(r.status, 201)
    const aliceJob = (await r.json()).registrations[0].job.jobId
    r = await call(`/jobs/${aliceJob}`, { key: bob.key })
    assert.equal(r.status, 404, "another tenant's job is not there")
    r = await call('/jobs', { key: bob.key })
    assert.deepEqual((await r.json()).jobs, [])
    r = await call(`/jobs/${aliceJob}`, { key: admin.key })
    assert.equal(r.status, 200, 'admins see every tenant')
    r = await call('/requests', { key: alice.key })
    assert.equal(r.status, 403)
    assert.equal((await r.json()).error.code, 'FORBIDDEN')

    // Quota: a batch that would take Alice over 2 live jobs stores nothing.
    r = await call('/register_jobs', { key: alice.key, method: 'POST', body: [{ cid: cid(2), replicationTarget: 1 }, { cid: cid(3), replicationTarget: 1 }] })
    assert.equal(r.status, 429)
    assert.equal((await r.json()).error.code, 'QUOTA_EXCEEDED')
    assert.equal((await node.listJobs({ tenant: alice.tenant })).length, 1)

    // Rate: the slow key's bucket empties; 429 with Retry-After.
    const statuses = []
    let retryAfter
    for (let i = 0; i < 4; i++) {
      r = await call('/jobs', { key: slow.key })
      statuses.push(r.status)
      if (r.status === 429) retryAfter = Number(r.headers.get('retry-after'))
    }
    assert.equal(statuses[0], 200)
    assert.ok(statuses.includes(429), `${statuses}`)
    assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`)

    // Bodies: 2 MiB is 413, wrong type 415, bad JSON 400 naming the field; none stored.
    r = await call('/register_jobs', { key: bob.key, method: 'POST', body: `{"cid":"${cid(4)}","replicationTarget":1,"pad":"${'x'.repeat(2 << 20)}"}` })
    assert.equal(r.status, 413)
    r = await call('/register_jobs', { key: bob.key, method: 'POST', body: 'cid=x', type: 'text/plain' })
    assert.equal(r.status, 415)
    r = await call('/register_jobs', { key: bob.key, method: 'POST', body: '{"cid": ' })
    assert.equal(r.status, 400)
    assert.equal((await r.json()).error.field, 'body')
    r = await call('/register_jobs', { key: bob.key, method: 'POST', body: { cid: cid(5), replicationTarget: 'two' } })
    assert.equal((await r.json()).error.field, 'replicationTarget')
    assert.equal((await node.listJobs({ tenant: 'team-b' })).length, 0, 'nothing stored by a refused request')

    // The library registers for a tenant the same way.
    const regs = await node.registerJobsFor('team-b', [{ cid: cid(1), replicationTarget: 1 }])
    assert.notEqual(regs[0].job.jobId, aliceJob, 'the same job of two tenants is two jobs')
    assert.equal(regs[0].job.spec.tenant, 'team-b')

    const revoked = await node.revokeApiKey(bob.id)
    assert.ok(revoked.revokedMs > 0)
    r = await call('/jobs', { key: bob.key })
    assert.equal(r.status, 401)
    await assert.rejects(node.revokeApiKey('key_nope'), (e) => e.code === 'KEY_NOT_FOUND')
    await assert.rejects(node.createApiKey({ name: 'x', scope: 'root' }), (e) => e.code === 'INVALID_ARGUMENT')

    // /events cannot stream through a host's adapter: a clear 501, not a hang.
    r = await call('/events', { key: admin.key })
    assert.equal(r.status, 501)
    assert.equal((await r.json()).error.code, 'STREAM_NOT_SUPPORTED')
  } finally {
    await new Promise((r) => server.close(r))
    await node.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

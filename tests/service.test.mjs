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

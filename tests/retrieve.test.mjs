// Verified retrieval through both packages (BACKEND=node: a Readable; BACKEND=wasm: a web
// ReadableStream) from the local trustless gateway (tests/devnet/gateway.mjs, built from
// ipfs-unixfs-importer and @ipld/car) and its hostile variants.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { randomBytes } from './helpers/data.mjs'
import { startGateway } from './helpers/gateway.mjs'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')

const CHUNK = 262144
const files = {}
let dir, info

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raas-retrieve-'))
  const paths = []
  for (const [name, size] of [['empty', 0], ['one', 1000], ['three', 2 * CHUNK + 5]]) {
    const bytes = randomBytes(size, size + 3)
    const p = join(dir, name)
    await writeFile(p, bytes)
    files[name] = { path: p, bytes }
    paths.push(p)
  }
  info = await startGateway(paths)
})
after(async () => {
  info?.stop()
  await rm(dir, { recursive: true, force: true })
})

const cidOf = (name) => info.roots[files[name].path]
const opts = (...modes) => ({ gateways: modes.map((m) => `${info.url}/${m}`), blockTimeoutMs: 2000 })

/** Reads the whole stream (a Readable or a ReadableStream: both are async iterables). */
async function readAll(stream) {
  const parts = []
  for await (const chunk of stream) {
    assert.ok(chunk instanceof Uint8Array)
    parts.push(chunk)
  }
  return Buffer.concat(parts)
}

test(`[${backend}] retrieve gives the exact verified bytes, with progress`, async () => {
  for (const name of Object.keys(files)) {
    assert.equal(cidOf(name), await raas.computeUnixfsCid(files[name].bytes), name)
    const seen = []
    const stream = await raas.retrieve(cidOf(name), { ...opts('honest'), onProgress: (n) => seen.push(n) })
    const got = await readAll(stream)
    assert.ok(got.equals(Buffer.from(files[name].bytes)), `${name}: ${got.length} bytes`)
    if (files[name].bytes.length > 0) assert.equal(seen.at(-1), files[name].bytes.length)
  }
  // Through a gateway that serves only blocks, and past a tampered one.
  const three = Buffer.from(files.three.bytes)
  assert.ok((await readAll(await raas.retrieve(cidOf('three'), opts('blocksonly')))).equals(three))
  assert.ok((await readAll(await raas.retrieve(cidOf('three'), opts('flip', 'honest')))).equals(three))
})

test(`[${backend}] retrieve fails with the typed codes and never yields unverified bytes`, async () => {
  const three = Buffer.from(files.three.bytes)
  for (const [mode, code] of [['flip', 'INTEGRITY'], ['truncate', 'INCOMPLETE'], ['error500', 'HTTP_ERROR'],
    ['notfound', 'NOT_FOUND'], ['wrongroot', 'NOT_FOUND']]) {
    const got = []
    await assert.rejects(async () => {
      const stream = await raas.retrieve(cidOf('three'), opts(mode))
      for await (const chunk of stream) got.push(chunk)
    }, (e) => {
      assert.equal(e.code, code, `${mode}: ${e.message}`)
      // The gateway is named by its place and origin; its path (which may hold a key) is not quoted.
      assert.match(e.message, /gateway 1 http:\/\/127\.0\.0\.1:\d+\/<redacted>/, `${mode}: ${e.message}`)
      assert.doesNotMatch(e.message, new RegExp(`/${mode}`), `${mode}: the path is not quoted`)
      return true
    })
    const prefix = Buffer.concat(got)
    assert.ok(prefix.equals(three.subarray(0, prefix.length)), `${mode}: only a verified prefix`)
  }
  await assert.rejects(raas.retrieve('not a cid', opts('honest')), { code: 'INVALID_CID' })
  await assert.rejects(raas.retrieve(cidOf('one'), { gateways: ['ftp://x'] }), { code: 'INVALID_URL' })
  await assert.rejects(raas.retrieve(cidOf('one'), { maxBytes: -1 }), { code: 'INVALID_ARGUMENT' })
})

// The engine is in the Node package only.
if (backend === 'node') test('[node] a node retrieves from its configured gateways, in JS and over HTTP', async () => {
  const node = await raas.RaasNode.open({
    store: `sqlite:${join(dir, 'n.db')}`,
    nodeId: 'js-retrieve',
    dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
    gateways: [`${info.url}/truncate`, `${info.url}/honest`],
  })
  const server = await node.serve({ port: 0 })
  try {
    const three = Buffer.from(files.three.bytes)
    assert.ok((await readAll(await node.retrieve(cidOf('three')))).equals(three))
    const res = await fetch(`${server.url}/retrieve/${cidOf('three')}`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('etag'), `"${cidOf('three')}"`)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(three))
    const missing = await fetch(`${server.url}/retrieve/${await raas.computeUnixfsCid(Buffer.from('nobody'))}`)
    assert.equal(missing.status, 404)
    assert.equal((await missing.json()).error.code, 'NOT_FOUND')
    await assert.rejects(node.retrieve('nope'), { code: 'INVALID_CID' })
  } finally {
    await server.close()
    await node.close()
  }
})

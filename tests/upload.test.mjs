// Uploads into a node's block store (Node only: the engine is in raas-node) from a Buffer,
// a Readable and an async generator; what a failed upload leaves (nothing); pins; and the
// node's /ipfs/ trustless gateway read by an independent verifying client,
// @helia/verified-fetch.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { randomBytes } from './helpers/data.mjs'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')

const CHUNK = 262144
let dir, node, server

async function readAll(stream) {
  const parts = []
  for await (const chunk of stream) parts.push(chunk)
  return Buffer.concat(parts)
}

if (backend === 'node') {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raas-upload-'))
    node = await raas.RaasNode.open({
      store: `sqlite:${join(dir, 'n.db')}`,
      nodeId: 'js-upload',
      maxUploadBytes: 180 * CHUNK,
      dealStatus: { rpcUrl: 'http://127.0.0.1:1', address: '0x0000000000000000000000000000000000000001' },
    })
    server = await node.serve({ port: 0 })
  })
  after(async () => {
    await server?.close()
    await node?.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('[node] node.upload takes a Buffer, a Readable or an async iterable and gives computeCids', async () => {
    const data = Buffer.from(randomBytes(3 * CHUNK + 9, 41))
    const ids = raas.computeCids(data)
    const path = join(dir, 'file.bin')
    await writeFile(path, data)
    async function* pieces() {
      for (let i = 0; i < data.length; i += 77_777) yield data.subarray(i, i + 77_777)
    }
    for (const [what, input] of [['Buffer', data], ['Uint8Array', new Uint8Array(data)],
      ['Readable', createReadStream(path, { highWaterMark: 65536 })], ['async generator', pieces()]]) {
      assert.deepEqual(await node.upload(input), ids, what)
    }
    assert.ok((await node.pins()).includes(ids.cid))
    // The node has no gateways: this comes from its own store, verified.
    assert.ok((await readAll(await node.retrieve(ids.cid))).equals(data))
    const res = await fetch(`${server.url}/retrieve/${ids.cid}`)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data))
    // The empty file too.
    assert.deepEqual(await node.upload(Buffer.alloc(0)), raas.computeCids(Buffer.alloc(0)))
  })

  test('[node] a failed upload rejects with its cause and leaves nothing behind', async () => {
    const before = await node.pins()
    const big = Buffer.from(randomBytes(34 * CHUNK, 42))
    async function* breaks() {
      yield big
      throw Object.assign(new Error('disk gone'), { code: 'EIO' })
    }
    await assert.rejects(node.upload(breaks()), { code: 'EIO' })
    const partial = raas.computeCids(big).cid
    await assert.rejects(node.retrieve(partial), { code: 'NOT_FOUND' })
    await assert.rejects(node.upload(Buffer.alloc(181 * CHUNK)), { code: 'TOO_LARGE' })
    await assert.rejects(node.upload(42), { code: 'INVALID_ARGUMENT' })
    await assert.rejects(node.upload([{}]), { code: 'INVALID_ARGUMENT' })
    assert.deepEqual(await node.pins(), before)
    // Collection after an unpin: the blocks of a failed upload were never kept.
    const ids = await node.upload(big)
    const r = await node.unpin(ids.cid)
    assert.equal(r.unpinned, true)
    assert.equal(r.deleted, 35, '34 leaves and the root')
    await assert.rejects(node.unpin('nope'), { code: 'INVALID_CID' })
  })

  test('[node] @helia/verified-fetch reads and verifies files from the node\'s /ipfs/ gateway', async () => {
    // Helia expects Node 22's Promise.withResolvers; this machine runs Node 20.
    Promise.withResolvers ??= function withResolvers() {
      let resolve, reject
      const promise = new Promise((a, b) => { resolve = a; reject = b })
      return { promise, resolve, reject }
    }
    const { createVerifiedFetch } = await import('@helia/verified-fetch')
    const vfetch = await createVerifiedFetch({
      gateways: [server.url], routers: [], allowLocal: true, allowInsecure: true,
    })
    try {
      for (const [size, seed] of [[1000, 51], [2 * CHUNK + 3, 52], [175 * CHUNK + 1, 53]]) {
        const data = Buffer.from(randomBytes(size, seed))
        const { cid } = await node.upload(data)
        const res = await vfetch(`ipfs://${cid}`, { signal: AbortSignal.timeout(60_000) })
        assert.equal(res.status, 200, `${size}`)
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(data), `${size} bytes`)
      }
    } finally {
      await vfetch.stop()
    }
  })
}

// Identifiers of data, checked against independent npm implementations on edge sizes.
// Runs against the napi addon (BACKEND=node) and the wasm package in Node (BACKEND=wasm).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { randomBytes, EDGE_SIZES } from './helpers/data.mjs'
import { cachedReference } from './helpers/cache.mjs'

const require = createRequire(import.meta.url)
const { backend, raas } = require('./helpers/backend.cjs')

/** computeCids is sync in Node and returns a Promise in the browser package: await both. */
const compute = async (input) => await raas.computeCids(input)

test(`[${backend}] computeCids equals the reference implementations on edge sizes`, async (t) => {
  for (const size of EDGE_SIZES) {
    await t.test(`${size} bytes`, async () => {
      const bytes = randomBytes(size, size + 7)
      const expected = await cachedReference(`${size}:${size + 7}`, bytes)
      assert.deepEqual(await compute(bytes), expected)
      const { cid, ...piece } = expected
      assert.deepEqual(raas.computePieceCid(bytes), piece)
      assert.equal(raas.computeUnixfsCid(bytes), cid)
    })
  }
})

test(`[${backend}] FRC-0069 vectors`, async () => {
  const four = new Uint8Array(4 * 127)
  for (let b = 0; b < 4; b++) four.fill(b, b * 127, (b + 1) * 127)
  const cases = [
    [four, 'baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi',
      'bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi', 512],
    [new Uint8Array(0), 'baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy',
      'bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy', 128],
    [new Uint8Array(2032), 'baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy',
      'bafkzcibcaadpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy', 2048],
    [new TextEncoder().encode('hello world\n'),
      'baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq',
      'bafkzcibcombdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq', 128],
  ]
  for (const [bytes, commP, pieceCid, pieceSize] of cases) {
    const ids = await compute(bytes)
    assert.equal(ids.commP, commP)
    assert.equal(ids.pieceCid, pieceCid)
    assert.equal(ids.pieceSize, pieceSize)
    assert.equal(ids.size, bytes.length)
  }
})

test(`[${backend}] CidHasher gives the same result fed in odd-sized chunks`, async () => {
  const bytes = randomBytes(700_001, 3)
  const h = new raas.CidHasher()
  for (let i = 0; i < bytes.length; i += 99_991) h.update(bytes.subarray(i, i + 99_991))
  assert.equal(h.bytesHashed, bytes.length)
  assert.deepEqual(h.finish(), await compute(bytes))
  assert.throws(() => h.finish(), (e) => e.code === 'INVALID_STATE')
  assert.throws(() => h.update(new Uint8Array(1)), (e) => e.code === 'INVALID_STATE')
})

test(`[${backend}] parseCid normalises and rejects with INVALID_CID`, () => {
  const v0 = raas.parseCid('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
  assert.deepEqual(v0, {
    cid: 'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
    version: 0, codec: 0x70, multihashCode: 0x12, digestSize: 32,
  })
  const upper = raas.parseCid('BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU')
  assert.equal(upper.cid, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  for (const bad of ['', 'not a cid', 'bafkreihdwdcefgh4dqkjv67uzcmw7oj', ' Qm']) {
    assert.throws(() => raas.parseCid(bad), (e) => {
      assert.equal(e.code, 'INVALID_CID')
      assert.ok(e instanceof Error)
      assert.match(e.message, /invalid CID/)
      return true
    })
  }
})

if (backend === 'node') {
  test('[node] computeCidsFromFile streams a file off the JS thread', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raas-'))
    try {
      const bytes = randomBytes(5 * 1024 * 1024 + 3, 11)
      const path = join(dir, 'payload.bin')
      await writeFile(path, bytes)
      const ids = await raas.computeCidsFromFile(path)
      assert.deepEqual(ids, await cachedReference('file:5242883:11', bytes))
      await assert.rejects(raas.computeCidsFromFile(join(dir, 'missing.bin')), (e) => {
        assert.equal(e.code, 'IO')
        assert.match(e.message, /missing\.bin/)
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
}

if (backend === 'wasm') {
  test('[wasm] computeCids reads a Blob as a stream and reports progress', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5, 21)
    const seen = []
    const ids = await raas.computeCids(new Blob([bytes.subarray(0, 1000), bytes.subarray(1000)]),
      (n) => seen.push(n))
    assert.deepEqual(ids, await compute(bytes))
    assert.ok(seen.length >= 2, 'progress reported per chunk')
    assert.equal(seen.at(-1), bytes.length)
    assert.ok(seen.every((n, i) => i === 0 || n >= seen[i - 1]))
    await assert.rejects(raas.computeCids('text'), (e) => e.code === 'INVALID_ARGUMENT')
  })
}

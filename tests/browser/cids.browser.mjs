// The browser package in headless Chromium: identifiers of Uint8Array and streamed Blob
// inputs equal the reference implementations; errors carry their code.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, EDGE_SIZES } from '../helpers/data.mjs'
import { cachedReference } from '../helpers/cache.mjs'
import { startServer, openPage } from '../helpers/browser.mjs'

let server, browser, page, errors

before(async () => {
  const started = await startServer({
    '/data': (url) => {
      const size = Number(url.searchParams.get('size'))
      return randomBytes(size, size + 7)
    },
  })
  server = started.server
  ;({ browser, page, errors } = await openPage(started.url))
})

after(async () => {
  await browser?.close()
  server?.close()
})

test('[chromium] computeCids of Uint8Array and Blob equals the references', async (t) => {
  for (const size of EDGE_SIZES) {
    await t.test(`${size} bytes`, async () => {
      const expected = await cachedReference(`${size}:${size + 7}`, randomBytes(size, size + 7))
      const got = await page.evaluate(async (size) => {
        const blob = await (await fetch(`/data?size=${size}`)).blob()
        const progress = []
        const fromBlob = await window.raas.computeCids(blob, (n) => progress.push(n))
        const fromBytes = await window.raas.computeCids(new Uint8Array(await blob.arrayBuffer()))
        return { fromBlob, fromBytes, lastProgress: progress.at(-1) }
      }, size)
      assert.deepEqual(got.fromBlob, expected)
      assert.deepEqual(got.fromBytes, expected)
      assert.equal(got.lastProgress, size)
    })
  }
  assert.deepEqual(errors, [])
})

test('[chromium] CidHasher and parseCid behave as in Node', async () => {
  const got = await page.evaluate(async () => {
    const { CidHasher, parseCid, computeCids } = window.raas
    const h = new CidHasher()
    h.update(new TextEncoder().encode('hello '))
    h.update(new TextEncoder().encode('world\n'))
    const streamed = h.finish()
    let finishedCode, cidCode, cidMessage
    try { h.finish() } catch (e) { finishedCode = e.code }
    try { parseCid('bafy-not-a-cid') } catch (e) { cidCode = e.code; cidMessage = e.message }
    return {
      streamed,
      direct: await computeCids(new TextEncoder().encode('hello world\n')),
      parsed: parseCid('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n'),
      finishedCode, cidCode, cidMessage,
    }
  })
  assert.deepEqual(got.streamed, got.direct)
  assert.equal(got.direct.commP, 'baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq')
  assert.equal(got.parsed.cid, 'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  assert.equal(got.finishedCode, 'INVALID_STATE')
  assert.equal(got.cidCode, 'INVALID_CID')
  assert.match(got.cidMessage, /invalid CID/)
})

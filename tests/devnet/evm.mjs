// Minimal EVM JSON-RPC helpers for the devnet: anvil's unlocked accounts sign for us, so
// deploying and calling needs only fetch and a little ABI encoding.
export async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = await res.json()
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result
}

export const word = (v) => BigInt.asUintN(256, BigInt(v)).toString(16).padStart(64, '0')
export const addressWord = (a) => a.toLowerCase().replace(/^0x/, '').padStart(64, '0')

/** ABI encoding of `bytes` as a dynamic tail (length word + padded data). */
export function bytesTail(hex) {
  const h = hex.replace(/^0x/, '')
  const len = h.length / 2
  return word(len) + h.padEnd(Math.ceil(len / 32) * 64, '0')
}

/** Sends a transaction from an unlocked account and waits for its receipt. */
export async function send(url, from, to, data, gas = '0x1c9c380') {
  const hash = await rpc(url, 'eth_sendTransaction', [{ from, to, data, gas }])
  // Big bulk-loading transactions can take seconds to mine: wait up to a minute.
  for (const started = Date.now(); Date.now() - started < 60_000;) {
    const receipt = await rpc(url, 'eth_getTransactionReceipt', [hash])
    if (receipt) {
      if (receipt.status !== '0x1') throw new Error(`transaction ${hash} reverted`)
      return receipt
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`no receipt for ${hash}`)
}

export async function deploy(url, from, bytecode, ctorArgs = '') {
  const receipt = await send(url, from, null, bytecode + ctorArgs)
  return receipt.contractAddress
}

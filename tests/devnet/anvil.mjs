// Starts anvil from the npm package @foundry-rs/anvil-linux-amd64 on a free loopback port.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createServer } from 'node:net'
import { rpc } from './evm.mjs'

const require = createRequire(import.meta.url)

export function anvilPath() {
  const pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json')
  return join(dirname(pkg), 'bin', 'anvil')
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * Anvil at mainnet-like epochs (block number = Filecoin epoch). `pruneHistory: n` keeps only
 * the last n states in memory (benchmarks that write thousands of blocks of state).
 */
export async function startAnvil({ startEpoch = 3_900_000, chainId = 31415926, pruneHistory = null, port = null } = {}) {
  port ??= await freePort()
  const prune = pruneHistory ? ['--prune-history', String(pruneHistory)] : []
  const child = spawn(anvilPath(), ['--port', String(port), '--host', '127.0.0.1', '--number',
    String(startEpoch), '--chain-id', String(chainId), '--silent', '--code-size-limit', '100000',
    '--gas-limit', '1000000000', ...prune],
  { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    try {
      await rpc(url, 'eth_chainId')
      const exited = new Promise((r) => child.once('exit', r))
      return { url, port, child, stop: () => child.kill('SIGTERM'), exited }
    } catch {
      if (child.exitCode !== null) throw new Error(`anvil exited: ${stderr}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  child.kill('SIGKILL')
  throw new Error(`anvil did not start: ${stderr}`)
}

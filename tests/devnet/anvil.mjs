// Starts anvil from the npm package @foundry-rs/anvil-linux-amd64 on a free loopback port.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createServer } from 'node:net'
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
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
  // A port found free can be taken before anvil binds it (by a devnet of a parallel test, or
  // an outgoing connection): anvil then exits, and that other anvil would answer our probe.
  // So a start counts only once the listening socket is this child's; a fresh port is tried
  // again when anvil could not bind the one it was given (never a port the caller chose).
  for (let attempt = 0; ; attempt++) {
    const started = await startOnce({ startEpoch, chainId, pruneHistory, port: port ?? await freePort() })
    if (started.url) return started
    if (port !== null || !started.inUse || attempt >= 4) throw new Error(started.error)
  }
}

async function startOnce({ startEpoch, chainId, pruneHistory, port }) {
  const prune = pruneHistory ? ['--prune-history', String(pruneHistory)] : []
  // anvil writes the states it cannot hold in memory under $HOME/.foundry/anvil/tmp and
  // leaves them there when stopped (80 MB per 1 000 blocks; a test run left gigabytes, and
  // a disk that fills fails later tests). Each anvil gets a home of its own, removed when it
  // exits, or when this process does.
  const home = mkdtempSync(join(tmpdir(), 'raas-anvil-'))
  const cleanUp = () => rmSync(home, { recursive: true, force: true })
  process.once('exit', cleanUp)
  const child = spawn(anvilPath(), ['--port', String(port), '--host', '127.0.0.1', '--number',
    String(startEpoch), '--chain-id', String(chainId), '--silent', '--code-size-limit', '100000',
    '--gas-limit', '1000000000', ...prune],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: home } })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((r) => child.once('exit', () => {
    cleanUp()
    process.removeListener('exit', cleanUp)
    r()
  }))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await exited
      return { error: `anvil exited on port ${port}: ${stderr}`, inUse: /in use/i.test(stderr) }
    }
    if (listensOn(child.pid, port)) {
      try {
        await rpc(url, 'eth_chainId')
        return { url, port, child, stop: () => child.kill('SIGTERM'), exited }
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  child.kill('SIGKILL')
  return { error: `anvil did not start on port ${port}: ${stderr}` }
}

/** Whether process `pid` holds the TCP socket listening on loopback port `port` (Linux). */
function listensOn(pid, port) {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  let inode = null
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    // Fields: sl, local_address, rem_address, st (0A = LISTEN), …, inode (the tenth).
    if (f[1] === local && f[3] === '0A') inode = f[9]
  }
  if (inode === null) return false
  let fds = []
  try { fds = readdirSync(`/proc/${pid}/fd`) } catch { return false }
  return fds.some((fd) => {
    try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]` } catch { return false }
  })
}

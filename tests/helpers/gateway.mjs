// Starts the local trustless gateway (tests/devnet/gateway.mjs) over `paths` (files or CARs);
// resolves { url, roots: { [path]: cid }, stop() }.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

const script = new URL('../devnet/gateway.mjs', import.meta.url).pathname

export async function startGateway(paths) {
  const child = spawn('node', [script, ...paths], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (c) => reject(new Error(`gateway exited ${c}`)))
  })
  const { url, roots } = JSON.parse(line)
  return { url, roots, stop: () => child.kill() }
}

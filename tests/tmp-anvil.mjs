import { startAnvil, anvilPath } from './devnet/anvil.mjs'
import { rpc } from './devnet/evm.mjs'
import { spawn } from 'node:child_process'
const a = await startAnvil({})
await rpc(a.url, 'anvil_mine', ['0x10'])
const accts = await rpc(a.url, 'eth_accounts')
const h = await rpc(a.url, 'eth_sendTransaction', [{ from: accts[0], to: accts[1], value: '0x1' }])
console.log('bn', await rpc(a.url, 'eth_blockNumber'), 'bal', await rpc(a.url, 'eth_getBalance', [accts[1], 'latest']))
const state = await rpc(a.url, 'anvil_dumpState')
console.log('state len', state.length)
a.child.kill('SIGTERM'); await new Promise(r => a.child.on('exit', r))
const port = new URL(a.url).port
const c = spawn(anvilPath(), ['--port', port, '--host', '127.0.0.1', '--chain-id', '31415926', '--silent'], { stdio: 'ignore' })
for (let i = 0; i < 200; i++) { try { await rpc(a.url, 'eth_chainId'); break } catch { await new Promise(r => setTimeout(r, 20)) } }
console.log('loaded', await rpc(a.url, 'anvil_loadState', [state]))
console.log('bn', await rpc(a.url, 'eth_blockNumber'), 'bal', await rpc(a.url, 'eth_getBalance', [accts[1], 'latest']))
console.log('tx', (await rpc(a.url, 'eth_getTransactionReceipt', [h]))?.blockNumber)
const s = await rpc(a.url, 'evm_snapshot'); await rpc(a.url, 'anvil_mine', ['0x5']); console.log('bn', await rpc(a.url, 'eth_blockNumber'))
console.log(await rpc(a.url, 'evm_revert', [s]), await rpc(a.url, 'eth_blockNumber'))
c.kill()

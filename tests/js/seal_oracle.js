// Oracle for tests/integration/test_js_interop.py: recovers ecert seals with ethers v6.
// stdin: {"cases": [{chainId (decimal string), verifyingContract, digest, signature}]}
// stdout: {"results": [{recovered, hash}]}
'use strict';
const { verifyTypedData, TypedDataEncoder } = require('ethers');

const TYPES = { Certificate: [{ name: 'digest', type: 'bytes32' }] };

function check(c) {
  const domain = { name: 'ecert', version: '1', chainId: BigInt(c.chainId), verifyingContract: c.verifyingContract };
  const value = { digest: c.digest };
  return {
    recovered: verifyTypedData(domain, TYPES, value, c.signature),
    hash: TypedDataEncoder.hash(domain, TYPES, value),
  };
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => (input += chunk));
process.stdin.on('end', () => {
  const { cases } = JSON.parse(input);
  process.stdout.write(JSON.stringify({ results: cases.map(check) }));
});

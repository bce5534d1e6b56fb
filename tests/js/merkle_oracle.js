// Oracle for tests/integration/test_js_interop.py: checks Python-built Merkle trees with
// @openzeppelin/merkle-tree. stdin: {"cases": [case]}; stdout: {"results": [result]}.
// case: {encoding, values, proofs: [[valueIndex, proof, alsoReturnJsProof]], multiproofs: [{indices, leaves, proof, proofFlags}], dump}
'use strict';
// @metamask/abi-utils builds an Error per assert even when it passes; without stack traces
// that costs nothing (about 3x faster here) and changes no result.
Error.stackTraceLimit = 0;
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

function check(c) {
  const tree = StandardMerkleTree.of(c.values, c.encoding);
  const root = tree.root;
  const proofs = c.proofs.map(([i, proof, compare]) => ({
    ok: StandardMerkleTree.verify(root, c.encoding, c.values[i], proof),
    js: compare ? tree.getProof(i) : null,
  }));
  const multiproofs = c.multiproofs.map(m => {
    let ok;
    try {
      ok = StandardMerkleTree.verifyMultiProof(root, c.encoding, {
        leaves: m.leaves,
        proof: m.proof,
        proofFlags: m.proofFlags,
      });
    } catch (e) {
      ok = false;
    }
    return { ok, js: tree.getMultiProof(m.indices) };
  });
  let loadRoot = null;
  if (c.dump) {
    loadRoot = StandardMerkleTree.load(c.dump).root;
  }
  return { root, proofs, multiproofs, loadRoot };
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => (input += chunk));
process.stdin.on('end', () => {
  const { cases } = JSON.parse(input);
  process.stdout.write(JSON.stringify({ results: cases.map(check) }));
});

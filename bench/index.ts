// `npm run bench [-- name...]`: every benchmark, or the named ones. Not part of the tests.
import { formatScaleBench, runScaleBench } from './scale';
import { runUploadBench } from './upload';

const benches: Record<string, () => Promise<void>> = {
  upload: () => runUploadBench(),
  scale: async () => console.log(formatScaleBench(await runScaleBench())),
};

async function main() {
  const names = process.argv.slice(2);
  for (const name of names.length ? names : Object.keys(benches)) {
    const bench = benches[name];
    if (!bench) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(benches).join(', ')}`);
    await bench();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

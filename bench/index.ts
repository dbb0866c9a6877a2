// `npm run bench [-- name...]`: every benchmark, or the named ones. Not part of the tests.
// Each compares stowage with a baseline measured in the same run, and reports peak RSS.
import { runHostileBench } from './hostile';
import { printLoadBench, runLoadBench } from './load';
import { runOffloadBench } from './offload';
import { runReportsBench } from './reports';
import { formatS3Bench, runS3Bench } from './s3';
import { formatScaleBench, runScaleBench } from './scale';
import { runSmallFilesBench } from './small-files';
import { runTusBench } from './tus';
import { runUploadBench } from './upload';

const benches: Record<string, () => Promise<void>> = {
  upload: () => runUploadBench(),
  small: () => runSmallFilesBench(),
  tus: () => runTusBench(),
  offload: () => runOffloadBench(),
  s3: async () => {
    console.log('\n## 1 GiB upload through the S3 store');
    console.log(formatS3Bench(await runS3Bench()));
  },
  reports: async () => {
    console.log('\n## Report writers');
    await runReportsBench();
  },
  load: async () => {
    console.log('\n## Mixed load (autocannon)');
    printLoadBench(await runLoadBench());
  },
  hostile: async () => {
    console.log('\n## Hostile and heavy report sources');
    await runHostileBench();
  },
  scale: async () => {
    console.log('\n## Several instances on PostgreSQL');
    console.log(formatScaleBench(await runScaleBench()));
  },
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

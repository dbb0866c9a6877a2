import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

describe('report limits', () => {
  it('have safe defaults: what one cell, the shared strings, an output and a report thread may take', () => {
    const { reports } = loadConfig({}, cwd);
    expect(reports).toMatchObject({
      maxOutputBytes: 256 * 1024 ** 2,
      threadMaxHeapMb: 128,
      source: { maxBytes: 100 * 1024 ** 2, maxDecompressedBytes: 500 * 1024 ** 2, maxCellBytes: 128 * 1024, maxSharedStringsBytes: 64 * 1024 ** 2 },
    });
  });

  it('are read from their variables', () => {
    const { reports } = loadConfig(
      { REPORT_SOURCE_MAX_CELL_BYTES: '32kb', REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES: '16mb', REPORT_MAX_BYTES: '1gb', REPORT_WORKER_MAX_MB: '256' },
      cwd,
    );
    expect(reports).toMatchObject({ maxOutputBytes: 1024 ** 3, threadMaxHeapMb: 256, source: { maxCellBytes: 32 * 1024, maxSharedStringsBytes: 16 * 1024 ** 2 } });
  });

  it('refuse values that would not bound memory, one line per variable', () => {
    expect(configProblems({ REPORT_SOURCE_MAX_CELL_BYTES: '2mb', REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES: '2gb', REPORT_MAX_BYTES: 'lots', REPORT_WORKER_MAX_MB: '8' }, cwd)).toEqual([
      'REPORT_SOURCE_MAX_CELL_BYTES: "2mb" must be at most 1mb (Excel cells hold at most 32,767 characters, under 128kb)',
      'REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES: "2gb" must be at most 1gb',
      'REPORT_MAX_BYTES: "lots" lots is not a size (use bytes, or e.g. 10mb, 1gb)',
      'REPORT_WORKER_MAX_MB: "8" must be at least 16 (MB of JavaScript heap for one report job; a PDF needs about 24)',
    ]);
  });
});

describe('the stall timeout of a running task', () => {
  it('is two minutes unless TASK_STALL_TIMEOUT says otherwise', () => {
    expect(loadConfig({}, cwd).tasks.stallMs).toBe(120_000);
    expect(loadConfig({ TASK_STALL_TIMEOUT: '90s' }, cwd).tasks.stallMs).toBe(90_000);
  });

  it('refuses anything but a duration of at least a second, in one line', () => {
    expect(configProblems({ TASK_STALL_TIMEOUT: '500ms' }, cwd)).toEqual(['TASK_STALL_TIMEOUT: "500ms" must be a duration of at least 1s (e.g. 2m)']);
    expect(configProblems({ TASK_STALL_TIMEOUT: 'never' }, cwd)).toEqual(['TASK_STALL_TIMEOUT: "never" must be a duration of at least 1s (e.g. 2m)']);
  });
});

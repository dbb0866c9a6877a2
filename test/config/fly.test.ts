import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

const cwd = '/srv/app';

describe('Fly placement configuration', () => {
  it('is on for a volume store on a Fly Machine, off for object storage or when switched off', () => {
    expect(loadConfig({ STORAGE: 'volume', FLY_MACHINE_ID: '148e0a1b2c3d', FLY_REGION: 'iad' }, cwd).placement).toEqual({ machineId: '148e0a1b2c3d', region: 'iad' });
    expect(loadConfig({ STORAGE: 's3', S3_BUCKET: 'b', FLY_MACHINE_ID: '148e0a1b2c3d' }, cwd).placement).toBeUndefined();
    expect(loadConfig({ STORAGE: 'volume', FLY_MACHINE_ID: '148e0a1b2c3d', FLY_REPLAY: 'off' }, cwd).placement).toBeUndefined();
    expect(loadConfig({ STORAGE: 'volume' }, cwd).placement).toBeUndefined();
  });

  it('FLY_REPLAY=on needs a machine id', () => {
    expect(() => loadConfig({ STORAGE: 'volume', FLY_REPLAY: 'on' }, cwd)).toThrow(ConfigError);
    expect(loadConfig({ STORAGE: 'volume', FLY_REPLAY: 'on', FLY_MACHINE_ID: 'local-1' }, cwd).placement).toEqual({ machineId: 'local-1', region: null });
  });
});

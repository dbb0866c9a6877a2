/**
 * docs/configuration.md documents every variable the configuration reads, and .env.example shows
 * every one an operator sets (not those a platform sets on its own).
 */
import { CONFIG_VARIABLES } from '../../src/config';
import { readDocument } from './markdown';

/** Set by Heroku, Fly or their storage add-ons; documented, but not for a .env file. */
const SET_BY_PLATFORMS = ['npm_lifecycle_event', 'DYNO', 'FLY_APP_NAME', 'FLY_MACHINE_ID', 'FLY_REGION', 'BUCKET_NAME', 'AWS_ENDPOINT_URL_S3', 'AWS_REGION'];

it('docs/configuration.md names every variable', () => {
  const doc = readDocument('docs/configuration.md');
  expect(CONFIG_VARIABLES.length).toBeGreaterThan(30);
  expect(CONFIG_VARIABLES.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
});

it('.env.example shows every variable an operator sets, set or commented out', () => {
  const example = readDocument('.env.example');
  const shown = (name: string) => new RegExp(`^(# ?)?${name}=`, 'm').test(example);
  expect(CONFIG_VARIABLES.filter((name) => !SET_BY_PLATFORMS.includes(name) && !shown(name))).toEqual([]);
});

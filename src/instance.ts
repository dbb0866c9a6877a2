import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';

/**
 * Who this process is, for telling what it leaves behind from what a live process is still
 * writing. Every process that writes (serve, worker, the CLI commands) has one, registered in the
 * catalog's `instances` table with a heartbeat (`catalog/instances.ts`); it names the process's
 * temp files (`<id>.<uuid>.part` in a store's `.tmp`), its work directory for report scratch
 * (`<TMPDIR>/stowage/work/<id>/`), and the pending records of the uploads it writes
 * (`files.upload_instance`).
 */
export interface Instance {
  /** `<name>.<pid>.<8 hex>`: the host (or Fly Machine, or dyno), the process id, and a nonce against pid reuse. */
  id: string;
  /** Where this process's pids mean something: the host's name, its boot and its pid namespace. */
  host: string;
  pid: number;
}

const UNSAFE = /[^A-Za-z0-9_-]/g;
const ID = /^([A-Za-z0-9_-]{1,40}\.\d{1,10}\.[0-9a-f]{8})(?:\.|$)/;

function readOr(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return '';
  }
}

/**
 * Two processes can check each other's pids only on the same host, after the same boot, in the
 * same pid namespace (containers sharing a volume have their own): all three go into the key.
 */
function hostKey(): string {
  return [
    os.hostname(),
    readOr(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    readOr(() => fs.readlinkSync('/proc/self/ns/pid')),
  ].join('|');
}

/** This process's identity; `name` defaults to the host name (FLY_MACHINE_ID or DYNO when the config has one). */
export function newInstance(name: string = os.hostname()): Instance {
  const label = (name.replace(UNSAFE, '_') || 'host').slice(0, 40);
  return { id: `${label}.${process.pid}.${randomBytes(4).toString('hex')}`, host: hostKey(), pid: process.pid };
}

/** The host label and pid an instance id carries. */
export function parseInstanceId(id: string): { label: string; pid: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,40})\.(\d{1,10})\.[0-9a-f]{8}$/.exec(id);
  return m ? { label: m[1], pid: Number(m[2]) } : undefined;
}

/** The instance that wrote a temp file or work directory named after it, or undefined for any other name. */
export function writerOf(name: string): string | undefined {
  return ID.exec(name)?.[1];
}

/** Whether a process with this pid exists on this host (EPERM: it does, as another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

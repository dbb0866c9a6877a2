/** Where this process's volume is: recorded on each file stored there, to route reads to it. */
export interface Placement {
  machineId: string;
  region: string | null;
}

/**
 * The response header naming the Fly Machine that holds a resumable upload (on its creation and
 * every answer about it), so a client can send `fly-force-instance-id` with the chunks that
 * follow: Fly's proxy replays only requests under 1 MB.
 */
export const MACHINE_HEADER = 'Stowage-Machine';

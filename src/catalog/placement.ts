/** Where this process's volume is: recorded on each file stored there, to route reads to it. */
export interface Placement {
  machineId: string;
  region: string | null;
}

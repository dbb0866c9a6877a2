import type { ServerResponse } from 'node:http';

/**
 * For an answer sent before the request body has all arrived, with `Connection: close`. Node
 * closes the socket as soon as the answer is out; what the client sends after that is refused with
 * a reset, which can reach it before it has read the answer (it sees EPIPE or ECONNRESET and no
 * response at all). As nginx's lingering close does, the socket is only half-closed after the
 * answer, and what the client still sends is read and dropped until it closes its side (it has
 * the answer and was told to stop) or for at most `ms`.
 */
export function lingerAfterAnswer(res: ServerResponse, ms = 5000): void {
  const socket = res.socket;
  if (!socket) return;
  res.once('finish', () => {
    // Node's close after the last response (`destroySoon`): its FIN goes out, the destroy doesn't.
    socket.removeListener('finish', socket.destroy);
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), ms).unref();
    socket.once('close', () => clearTimeout(timer));
  });
}

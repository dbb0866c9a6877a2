# Build stage: compile TypeScript and native modules (better-sqlite3, native/sha256.c), then drop dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# node-gyp's toolchain, build stage only. Unpinned: a Debian stable release only takes fixes,
# and an exact version pinned here would vanish from the mirrors at the next one.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm's postinstall compiles the native sha256 of resumable uploads (native/sha256.c).
COPY scripts/build-native.js ./scripts/
COPY native/sha256.c ./native/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

# Runtime stage: only the compiled app and production dependencies, run as the non-root `node` user.
# Bound to every interface (a container is reached from outside it), so stowage needs SECRET_KEY
# (it refuses to start without one: docker run -e SECRET_KEY="$(openssl rand -base64 48)" ...)
# and every request needs credentials: create keys with
# docker exec <container> node dist/src/cli/index.js keys create --owner NAME (see docs/security.md).
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    STORAGE=volume \
    STORAGE_PATH=/data/files
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/native/build ./native/build
# The upload page's static assets, found beside package.json at runtime.
COPY public ./public
# The PDF reports' fallback fonts (Noto, OFL), found beside package.json at runtime.
COPY fonts ./fonts
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node runs as PID 1 and gets SIGTERM itself (stowage handles it: graceful shutdown).
CMD ["node", "dist/src/cli/index.js", "serve"]

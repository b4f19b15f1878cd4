# syntax=docker/dockerfile:1
# fusproxy container: a Debian bookworm build stage and a slim bookworm runtime that holds
# only the two binaries, the shared libraries they link, CA certificates and curl (for
# HEALTHCHECK). Build: `docker build -t fusproxy .` or `podman build --format docker -t
# fusproxy .` (the docker format keeps HEALTHCHECK). See docs/deploy.md.

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
ARG BUILD_JOBS=2
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The build dependencies, as every developer installs them (a layer of its own, so that a
# source change does not re-install them).
COPY scripts/setup.sh scripts/setup.sh
RUN apt-get update -qq \
 && bash scripts/setup.sh \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# Only the two shipped targets; ccache keeps object files across image builds.
RUN --mount=type=cache,target=/root/.cache/ccache \
    export CCACHE_DIR=/root/.cache/ccache \
 && ccache --zero-stats >/dev/null \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null \
 && cmake --build /build -j"${BUILD_JOBS}" --target fusproxy fus-sim \
 && { ccache --show-stats | grep -E 'Hits|Misses|hit|miss' || true; }
# Stage the stripped binaries and the names of the Debian packages owning every shared
# library they link, so the runtime installs exactly those and nothing else.
RUN set -eu; mkdir -p /out/bin; \
    install -s "$(find /build -type f -name fusproxy -perm -u+x | head -n1)" /out/bin/fusproxy; \
    install -s "$(find /build -type f -name fus-sim -perm -u+x | head -n1)" /out/bin/fus-sim; \
    if ldd /out/bin/* | grep -q 'not found'; then ldd /out/bin/*; exit 1; fi; \
    for lib in $(ldd /out/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")"; \
    done | cut -d: -f1 | sort -u > /out/runtime-packages; \
    echo "runtime packages:" $(cat /out/runtime-packages)

FROM debian:${DEBIAN_RELEASE}-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends $(cat /tmp/runtime-packages) ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /var/cache/fusproxy --shell /usr/sbin/nologin fusproxy \
 && install -d -o fusproxy -g fusproxy -m 0750 /var/cache/fusproxy
COPY --from=build /out/bin/ /usr/local/bin/
RUN set -eu; if ldd /usr/local/bin/fusproxy /usr/local/bin/fus-sim | grep 'not found'; then exit 1; fi

# Every setting is a FUSPROXY_* variable (FUSPROXY_TOKEN, FUSPROXY_CACHE_MAX_BYTES,
# FUSPROXY_LOG_FORMAT=json, ...). Change the port through FUSPROXY_LISTEN: HEALTHCHECK
# reads it.
ENV FUSPROXY_CACHE_DIR=/var/cache/fusproxy \
    FUSPROXY_LISTEN=0.0.0.0:8080
USER 10001:10001
WORKDIR /var/cache/fusproxy
VOLUME /var/cache/fusproxy
EXPOSE 8080
# /healthz stays open when a token is set; -k because with --tls-cert the port speaks TLS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 4 "http://127.0.0.1:${FUSPROXY_LISTEN##*:}/healthz" \
   || curl -fsSk -o /dev/null --max-time 4 "https://127.0.0.1:${FUSPROXY_LISTEN##*:}/healthz" \
   || exit 1
# fusproxy drains in-flight downloads on SIGTERM for up to --shutdown-grace seconds (30):
# give it longer than that (`docker stop -t 40`, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/fusproxy"]
LABEL org.opencontainers.image.title="fusproxy" \
      org.opencontainers.image.description="Samsung firmware as a plain HTTP resource: FUS proxy, decryption, caching mirror"

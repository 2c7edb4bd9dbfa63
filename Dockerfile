# phlow-gateway container image (SPEC.md, "Deployment").
#   docker build -t phlow-gateway .
#   docker run --rm -p 8080:8080 -v "$PWD/my.yaml:/etc/phlow/gateway.yaml:ro" phlow-gateway
# The image also holds phlow-demo-upstream (docker-compose.yml's "upstream").

# Build stage: the packages scripts/install-deps.sh installs for a build, a Release
# build, and the .deb (cpack), whose Depends the final stage lets apt resolve.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# The source arrives without .git (.dockerignore): name the commit for --version with
#   docker build --build-arg PHLOW_GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
ARG PHLOW_GIT_COMMIT=unknown
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DPHLOW_BUILD_TESTS=OFF \
      -DPHLOW_BUILD_BENCH=OFF -DPHLOW_GIT_COMMIT="${PHLOW_GIT_COMMIT}" \
 && cmake --build /build -j"$(nproc)" --target phlow-gateway phlow-demo-upstream \
 && cd /build && cpack -G DEB \
 && mkdir /deb && cp phlow-gateway_*.deb /deb/

# Final stage: runtime libraries only (the .deb's Depends), curl for the healthcheck.
FROM debian:12-slim
COPY --from=build /deb/ /tmp/deb/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      /tmp/deb/phlow-gateway_*.deb curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/deb \
 && useradd --system --uid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin phlow
USER phlow
EXPOSE 8080 9090
# The admin listener answers /healthz; the packaged /etc/phlow/gateway.yaml keeps it
# on 127.0.0.1:9090 (mount your own config over it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["phlow-gateway"]
CMD ["--config", "/etc/phlow/gateway.yaml"]

# Wharf's server as a container image:
#   docker build --build-arg VERSION=1.2.3 -t wharf .
#   docker run -d --name wharf -p 8790:8790 -v wharf-data:/var/lib/wharf \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     wharf server --addr 0.0.0.0:8790 --data-dir /var/lib/wharf --url https://wharf.example.com
# The two --security-opt let bubblewrap build each step's sandbox (a user
# namespace of its own), which the default seccomp and AppArmor profiles of
# Docker forbid; README, "Container image", says why and what else works.

# Build: a static binary (CGO_ENABLED=0; the SQLite driver is pure Go),
# stamped as scripts/release stamps it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.0.0-dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/wharfml/wharf.Version=${VERSION} -X github.com/wharfml/wharf.Commit=${COMMIT} -X github.com/wharfml/wharf.BuildDate=${DATE}" \
      -o /out/wharf ./cmd/wharf

# Run: what job steps need besides the binary: bubblewrap for their
# sandboxes, Python with venv to build their environments, CA certificates
# for HTTPS inputs, curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap python3 python3-venv ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/wharf --shell /usr/sbin/nologin wharf \
 && install -d -o wharf -g wharf -m 0700 /var/lib/wharf
COPY --from=build /out/wharf /usr/local/bin/wharf
USER wharf
ENV WHARF_DATA_DIR=/var/lib/wharf HOME=/var/lib/wharf
VOLUME ["/var/lib/wharf"]
EXPOSE 8790
# /readyz answers 200 once the server serves and its store answers; -k
# because a server given --tls-cert may hold a certificate for its public
# name only (set WHARF_HEALTH_URL=https://127.0.0.1:8790 then).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsSk "${WHARF_HEALTH_URL:-http://127.0.0.1:8790}/readyz" >/dev/null || exit 1
ENTRYPOINT ["wharf"]
CMD ["server", "--addr", "0.0.0.0:8790", "--data-dir", "/var/lib/wharf"]

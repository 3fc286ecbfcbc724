# seedbatch container image: one static binary, every subcommand.
#
#   docker build -t seedbatch .
#   docker run --rm seedbatch help
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 -e SEEDANCE_API_KEY \
#       -v videos:/data seedbatch worker
#
# Configuration comes from the environment at run time (REDIS_URL,
# SEEDANCE_API_KEY, SEEDANCE_BASE_URL, SEEDBATCH_<SECTION>_<FIELD>), secrets
# also from mounted files (SEEDANCE_API_KEY_FILE=/run/secrets/...), or from a
# mounted file passed with --config. Nothing secret is baked into the image.
#
# There is no shell: a container healthcheck runs the binary itself, e.g.
#   ["CMD", "/seedbatch", "healthcheck", "worker"]   (see docker-compose.yml)

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Dependencies first, so this layer stays cached while only sources change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/seedbatch ./cmd/seedbatch

# The data directory, created here because the final image has no shell.
# A named volume mounted at /data starts as a copy of it, owned by nonroot.
RUN mkdir -p /out/data/out /out/data/inbox

# distroless/static: CA certificates and tzdata, no shell, runs as
# nonroot (uid/gid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seedbatch /seedbatch
COPY --from=build --chown=65532:65532 /out/data /data
# The default out_dir is the relative "out", so downloads land in /data/out
# even when SEEDBATCH_OUT_DIR is not set.
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
ENTRYPOINT ["/seedbatch"]
CMD ["help"]

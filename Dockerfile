# singoff: build with FFmpeg's development libraries, run on a slim
# Debian with the runtime libraries only.
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswscale-dev \
      libswresample-dev libavutil-dev libopus-dev pkg-config npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY web/package.json web/package-lock.json web/
RUN cd web && npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN mkdir -p web/assets/vendor \
 && cp web/node_modules/hls.js/dist/hls.min.mjs web/assets/vendor/ \
 && cp web/node_modules/shaka-player/dist/shaka-player.hls-es2021.js web/assets/vendor/shaka-player.hls.js \
 && cp web/node_modules/video.js/dist/video.min.js web/assets/vendor/ \
 && go build -trimpath -o /out/singoff ./cmd/singoff

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec59 libavformat59 libavfilter8 libavdevice59 libswscale6 libswresample4 \
      libavutil57 libopus0 ca-certificates fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /data --uid 10001 singoff \
 && mkdir /data && chown singoff /data
COPY --from=build /out/singoff /usr/local/bin/singoff
USER singoff
VOLUME /data
ENV SINGOFF_DATA_DIR=/data
EXPOSE 8080/tcp 8189/udp 8189/tcp
ENTRYPOINT ["singoff"]
CMD ["serve"]

// Command centrifuge-bench is the benchmark's stand-in for Centrifugo: the Centrifuge library (Centrifugo's
// real-time core, same client protocol and in-memory broker) behind what Centrifugo's configuration gives
// a deployment: HMAC (HS256) JWT connect tokens, a `bench` namespace clients may subscribe to, and an HTTP
// publish API with an API key (POST /api/publish {"channel","data"} with X-API-Key), as Centrifugo's.
//
// It exists because the Go module proxy answers 403 for github.com/centrifugal/centrifugo/v5 and /v6, so
// Centrifugo itself cannot be built here; the library it is built on is served.
//
//	PORT=8000 JWT_SECRET=... API_KEY=... centrifuge-bench
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/centrifugal/centrifuge"
)

type claims struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// verifyHS256 checks an HS256 JWT's signature and expiry and returns its claims.
func verifyHS256(token string, secret []byte) (claims, error) {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("malformed token")
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !strings.Contains(string(header), `"HS256"`) {
		return c, errors.New("unsupported algorithm")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(signature, mac.Sum(nil)) {
		return c, errors.New("bad signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, errors.New("bad claims")
	}
	if c.Sub == "" || (c.Exp != 0 && c.Exp < time.Now().Unix()) {
		return c, errors.New("expired or anonymous")
	}
	return c, nil
}

func main() {
	port := os.Getenv("PORT")
	secret := []byte(os.Getenv("JWT_SECRET"))
	apiKey := os.Getenv("API_KEY")

	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelError, LogHandler: func(e centrifuge.LogEntry) { log.Printf("%s %v", e.Message, e.Fields) }})
	if err != nil {
		log.Fatal(err)
	}
	node.OnConnecting(func(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		c, err := verifyHS256(e.Token, secret)
		if err != nil {
			return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
		}
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: c.Sub}}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			// The `bench` namespace allows subscribing; a personal channel only to its user.
			if strings.HasPrefix(e.Channel, "bench:user_") && e.Channel != "bench:user_"+client.UserID() {
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			if !strings.HasPrefix(e.Channel, "bench:") {
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorUnknownChannel)
				return
			}
			cb(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) })
	mux.HandleFunc("/api/publish", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("X-API-Key") != apiKey {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var req struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if err != nil || json.Unmarshal(body, &req) != nil || req.Channel == "" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		if _, err := node.Publish(req.Channel, req.Data); err != nil {
			http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"result":{}}`))
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}

package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
)

// decodeStrict reads exactly one JSON object into v: unknown fields and
// trailing data are errors.
func decodeStrict(body []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body is not a %s JSON object", what)
	}
	if dec.More() {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

// parseCreate reads a create request's JSON body.
func parseCreate(body []byte) (battle.CreateRequest, error) {
	var req struct {
		Title       *string  `json:"title"`
		Singers     []string `json:"singers"`
		Rounds      *int     `json:"rounds"`
		TurnSeconds *int     `json:"turn_seconds"`
	}
	if err := decodeStrict(body, &req, "battle"); err != nil {
		return battle.CreateRequest{}, err
	}
	return battle.CreateRequest{Title: req.Title, Singers: req.Singers, Rounds: req.Rounds, TurnSeconds: req.TurnSeconds}, nil
}

// parseVote reads a vote's JSON body: {"slot": 1} or {"slot": 2}.
func parseVote(body []byte) (int, error) {
	var req struct {
		Slot *int `json:"slot"`
	}
	if err := decodeStrict(body, &req, "vote"); err != nil {
		return 0, err
	}
	if req.Slot == nil || (*req.Slot != 1 && *req.Slot != 2) {
		return 0, errors.New(`"slot" must be 1 or 2`)
	}
	return *req.Slot, nil
}

// jsonBody reads a JSON request body; when it fails it has answered (415
// for another content type or none, 413 or 400 from reading). A body
// without a content type is refused: another site's page can send one
// without asking the browser's CORS preflight.
func jsonBody(c *gin.Context) ([]byte, bool) {
	if c.ContentType() != "application/json" {
		httpjson.Error(c.Writer, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return nil, false
	}
	return httpjson.ReadBody(c.Writer, c.Request)
}

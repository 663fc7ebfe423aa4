package serving

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// bearerAuth admits requests carrying "Authorization: Bearer <token>". The
// comparison is of SHA-256 digests in constant time, so neither the content
// nor the length of the token leaks through timing. The token is never
// logged, and the request logger logs no headers.
func (s *Server) bearerAuth() gin.HandlerFunc {
	want := sha256.Sum256([]byte(s.cfg.Token))
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="capflow"`)
			s.fail(c, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "a valid bearer token is required"})
			c.Abort()
			return
		}
		c.Next()
	}
}

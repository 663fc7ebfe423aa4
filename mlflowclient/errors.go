package mlflowclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MLflow error codes (databricks.proto ErrorCode) that callers commonly test for.
const (
	CodeInternalError           = "INTERNAL_ERROR"
	CodeTemporarilyUnavailable  = "TEMPORARILY_UNAVAILABLE"
	CodeInvalidParameterValue   = "INVALID_PARAMETER_VALUE"
	CodeInvalidState            = "INVALID_STATE"
	CodeBadRequest              = "BAD_REQUEST"
	CodeResourceAlreadyExists   = "RESOURCE_ALREADY_EXISTS"
	CodeResourceDoesNotExist    = "RESOURCE_DOES_NOT_EXIST"
	CodeEndpointNotFound        = "ENDPOINT_NOT_FOUND"
	CodeNotImplemented          = "NOT_IMPLEMENTED"
	CodePermissionDenied        = "PERMISSION_DENIED"
	CodeUnauthenticated         = "UNAUTHENTICATED"
	CodeResourceExhausted       = "RESOURCE_EXHAUSTED"
	CodeRequestLimitExceeded    = "REQUEST_LIMIT_EXCEEDED"
	CodeMalformedRequest        = "MALFORMED_REQUEST"
	CodeInvalidRequest          = "INVALID_REQUEST"
	CodeCustomerUnauthorized    = "CUSTOMER_UNAUTHORIZED"
	CodeResourceConflict        = "RESOURCE_CONFLICT"
	CodeDeadlineExceeded        = "DEADLINE_EXCEEDED"
	CodeServiceUnderMaintenance = "SERVICE_UNDER_MAINTENANCE"
)

// APIError is every error the MLflow server answers with. Code is MLflow's
// error_code (synthesized from the HTTP status when the body is not MLflow
// JSON: a bare 404 becomes ENDPOINT_NOT_FOUND).
type APIError struct {
	StatusCode int    // HTTP status
	Code       string // MLflow error_code, e.g. RESOURCE_DOES_NOT_EXIST
	Message    string // server's message
	Method     string // request method
	Path       string // request path (never the query: it may carry values)
	RetryAfter string // Retry-After header, when the server sent one
}

func (e *APIError) Error() string {
	return fmt.Sprintf("mlflow: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, e.Code, e.Message)
}

// Is lets errors.Is(err, &APIError{Code: X}) match on the code alone.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok {
		return false
	}
	return (t.Code == "" || t.Code == e.Code) && (t.StatusCode == 0 || t.StatusCode == e.StatusCode)
}

// ErrorCode returns err's MLflow error code, or "" when err is not an *APIError.
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IsNotFound reports whether err says the resource (or endpoint) does not exist.
func IsNotFound(err error) bool {
	c := ErrorCode(err)
	return c == CodeResourceDoesNotExist || c == CodeEndpointNotFound
}

// IsAlreadyExists reports whether err is RESOURCE_ALREADY_EXISTS.
func IsAlreadyExists(err error) bool { return ErrorCode(err) == CodeResourceAlreadyExists }

// IsInvalidParameter reports whether err is INVALID_PARAMETER_VALUE.
func IsInvalidParameter(err error) bool { return ErrorCode(err) == CodeInvalidParameterValue }

// IsNotImplemented reports whether the server does not implement the call.
func IsNotImplemented(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Code == CodeNotImplemented || ae.StatusCode == http.StatusNotImplemented)
}

// IsUnauthorized reports whether the server refused the credentials.
func IsUnauthorized(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden ||
		ae.Code == CodeUnauthenticated || ae.Code == CodePermissionDenied
}

// newAPIError builds an APIError from a non-2xx response.
func newAPIError(method, path string, status int, h http.Header, body []byte) *APIError {
	e := &APIError{StatusCode: status, Method: method, Path: path, RetryAfter: h.Get("Retry-After")}
	var wire struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &wire) == nil && wire.ErrorCode != "" {
		e.Code, e.Message = wire.ErrorCode, wire.Message
		return e
	}
	e.Code = codeForStatus(status)
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 512 {
		e.Message = e.Message[:512] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeEndpointNotFound
	case http.StatusConflict:
		return CodeResourceConflict
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return CodeDeadlineExceeded
	case http.StatusTooManyRequests:
		return CodeRequestLimitExceeded
	case http.StatusNotImplemented:
		return CodeNotImplemented
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return CodeTemporarilyUnavailable
	}
	if status >= 500 {
		return CodeInternalError
	}
	return CodeBadRequest
}

// ValidationError is returned before anything is sent when an argument breaks
// a rule the server would enforce (key syntax, value length, missing id...).
type ValidationError struct {
	Field  string // what is wrong, e.g. "metric key", "run_id"
	Value  string // the offending value, shortened
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("mlflowclient: invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("mlflowclient: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// ConfigError reports a bad client configuration. It never holds credentials.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("mlflowclient: config: %s %s", e.Field, e.Reason)
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func required(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return &ValidationError{Field: field, Reason: "is required"}
	}
	return nil
}

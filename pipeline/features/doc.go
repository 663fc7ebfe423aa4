// Package features is the feature pipeline stage: it builds, validates and writes capability features.
package features

module github.com/dhosauth/dhosauth/services/activation

go 1.26.7

replace (
	github.com/dhosauth/dhosauth/gen => ../../gen
	github.com/dhosauth/dhosauth/pkg => ../../pkg
)

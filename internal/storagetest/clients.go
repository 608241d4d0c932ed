package storagetest

import (
	"context"
	"io"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscredentials "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// AzureClient is the plain Azure SDK's client of Azurite's account at
// endpoint (what StartAzurite returns), as any tool beside Wharf uses it.
func AzureClient(t testing.TB, endpoint string) *azblob.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(endpoint, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// S3Client is the plain AWS SDK's client of moto at endpoint (what
// StartMoto returns), path-style as moto serves it.
func S3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{Region: MotoRegion, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: awscredentials.NewStaticCredentialsProvider(MotoAccessKey, MotoSecretKey, "")})
}

// ListAzure returns every blob of container below prefix with its content,
// listed and downloaded by the plain SDK.
func ListAzure(t testing.TB, c *azblob.Client, container, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	pager := c.NewListBlobsFlatPager(container, &azblob.ListBlobsFlatOptions{Prefix: aws.String(prefix)})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			resp, err := c.DownloadStream(ctx, container, *b.Name, nil)
			out[*b.Name] = string(ReadBody(t, resp.Body, err))
		}
	}
	return out
}

// ListS3 returns every object of bucket below prefix with its content,
// listed and downloaded by the plain SDK.
func ListS3(t testing.TB, c *s3.Client, bucket, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	pager := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			resp, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			var body io.ReadCloser
			if err == nil {
				body = resp.Body
			}
			out[*o.Key] = string(ReadBody(t, body, err))
		}
	}
	return out
}

/**
 * A fixed RS256 key pair for tests whose edge config is fixed before the test starts (the workerd projects bind
 * the public half as EDGE_JWT_PUBLIC_KEY). A test key: it protects nothing.
 */
import { exportSPKI, importJWK, type JWK } from 'jose'
import type { SigningKey } from './keys.ts'

export const FIXTURE_KID = 'idp-1'

const PRIVATE_JWK: JWK = {
  kty: 'RSA',
  n: 'rGaXMPSsNtYzQXVEOrswLYzvOQETbjJjwRERKD3pSBJ1tZCqVCPXdfGGbtEopEfqMtYcdQBHJfpR79ZRD0ndQw2BJVEOzfTgE6ELdXEN-meU3UhpDb0kVMlBDXKXlQ7a2hXor4mGAKHmmbUuKN-eSGuefnJwVk5A-50s7VOu1d7rtbeeeScAsroqVruuB2oqdEBBJ8atZX2-yuVnv1fm3XMvDgeehS3azGplP7vyo5gEOjkeR2UrFYdOWOe-7yQidCNMbmryZv7G_Wy5l0HHKAUBXoL8NoxK8e1LHOorHjehaHTXSX3ykubZnAWdYcuan589HiGzhx5UDG4Q3REhNw',
  e: 'AQAB',
  d: 'Tdssxz6PsVoNnq-TJwTXDpMZi8BJIpheBVgsS-Sdv98aSmsxCLuA97Ih2FTbykjx4pBgHJSKDQQdUbcTN1jPtBLaslwHWAqQ0TyG3Lw4KE_z4fTsAHjc-e9DUgvgmb-yJRAE25U7L3juF5dDZ9EI_cKgOpF62vcPELJcEjea-tkpfC7izkmPi9aDBZfPOwFWge0wLAPKZT1JAjirfLGgTcGq2j0BTeqJz_2F1Sj4flHA2FeM-JmSvUrr183QyAfOnvOxRhiagstGr8YyCqk5ySEdh0Es2yNI2vB1nhAb7gW0GnQlbReOdCbSRcRprY-GooTJ7imcSfiAc-o63Zr67Q',
  p: '4ytN4WzDRIsmKEAdwcjse2K3AIBPW58ihvz1kG8u-6uV6CzlxCZ9j6QOK0HHoRjc7RHgOgVNkdJjX6Fm1DcnqmFvMHeMVoyniX5NGDjrw5OTqeJOTKq45r_lM91UDmpf0Yl-FqlYoM3-X_kCDduV9lnklmmnEOEn_1iuc9BpAvM',
  q: 'wkfeL0zngWlGt0Wo2mxNqA0j8l5ZykyRQBYhO7PPzRqE5vkBriCjI8i7HW3g5PSsl5mesjODRWwS05tWwNjS7GDtsCpRoZaosKUXoYi5yLlzgu3lM_PhTNSrLPEKg9_pdMwVdJsaaWpjDOACgX_BT4FVq8l_VSEVXdZAHWl4Ea0',
  dp: 'n9RyAS7i3DEC8cLarONO7yjvFN0x-IaoZk1IAQ0ZA10gJbChIDbslMmaZnjrmb7CgdHX7zqX7wcVf80xahI8SDYxYupZxPNFVQmV-Hrj9kC43ggpiut7GG7fNnR8lX_mVqjkG9GeV9VXKfMqrNFYW3G30NQZBVlFKPUeGMIDgF0',
  dq: 'CcADlYodgDAhXWdAjx2qVAm8yRgVF4L6MyYpKs7eWeO_0bujavK2XUBgq5xtEfB5jO4nube-GcjPtRDxrKH1C-ndY97r09k0xBC0--VZtYohEuwPeaj-oJV3tbyvE2k0VSk81mpGTA4LxISle4xGzk-mVgW5vzL22Iu9EfzOCs0',
  qi: 'jhC1fuG2ObNa7B1GSjuI8xS-I8gL760bTVK1erQmqRoRuw-URFEEth4L88tKZ9MNR-6JLeYsoJa_uxwONGdMe819K2k6HVZcvaCqGoHu-BBbYIua5IVUzT3ZvrA6glYXIRGBcpFIbiQmqk7xrJhCvf_ASAJrEdI3QjW1kvHNfgs',
}

/** The public half, as an edge would be configured with it. */
export const FIXTURE_PUBLIC_JWK: JWK = { kty: PRIVATE_JWK.kty!, n: PRIVATE_JWK.n!, e: PRIVATE_JWK.e!, kid: FIXTURE_KID, alg: 'RS256' }

/** The fixture as a SigningKey (works in Node and workerd). */
export const fixtureKey = async (): Promise<SigningKey> => {
  const privateKey = (await importJWK({ ...PRIVATE_JWK, alg: 'RS256' }, 'RS256')) as CryptoKey
  const publicKey = (await importJWK(FIXTURE_PUBLIC_JWK, 'RS256', { extractable: true })) as CryptoKey
  return { alg: 'RS256', kid: FIXTURE_KID, privateKey, publicKey, jwk: FIXTURE_PUBLIC_JWK, pem: await exportSPKI(publicKey) }
}

"""Small and medium enterprises (财库〔2020〕46号, 财库〔2022〕19号): suppliers' dated 中小企业声明函
classified by the thresholds of 工信部联企业〔2011〕300号 (`rules`, pure), the declaration in force on a
day (`current`), filing one (`service`), and the 小微企业 price deduction in inquiries and auctions."""

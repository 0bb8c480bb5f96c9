/*
 * onednn_precision_probe.c - which kernel oneDNN picks for one convolution in
 * FP32, BF16 and INT8 on this CPU, and how fast each is (docs/performance.md,
 * "Low-precision perturbation passes"). Plain oneDNN, no fxplain.
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE benchmarks/onednn_precision_probe.c \
 *       -I"$VENV/include" -L"$VENV/lib" -Wl,-rpath,"$VENV/lib" -ldnnl -o /tmp/probe
 *   /tmp/probe [N C O H K S]      (default: 32 64 64 38 3 1, NHWC, pad K/2, ReLU post-op)
 *
 * Prints the implementation name (as ONEDNN_VERBOSE would), the best of 7
 * repeats of 5 runs, GFLOP/s, and FP32 / INT8 time ratios.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#define CK(x) do{dnnl_status_t s_=(x); if(s_){fprintf(stderr,"%s -> %d\n",#x,s_); return -1;}}while(0)
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
dnnl_engine_t eng; dnnl_stream_t str;
static double run(dnnl_data_type_t sdt, dnnl_data_type_t wdt, dnnl_data_type_t ddt, int N,int C,int O,int H,int K,int stride, const char*name){
  dnnl_dims_t sd={N,C,H,H}, wd={O,C,K,K}, bd={O};
  int OH=(H+2*(K/2)-K)/stride+1; dnnl_dims_t dd={N,O,OH,OH};
  dnnl_memory_desc_t smd,wmd,dmd,bmd;
  CK(dnnl_memory_desc_create_with_tag(&smd,4,sd,sdt,dnnl_nhwc));
  CK(dnnl_memory_desc_create_with_tag(&wmd,4,wd,wdt,dnnl_format_tag_any));
  CK(dnnl_memory_desc_create_with_tag(&dmd,4,dd,ddt,dnnl_nhwc));
  CK(dnnl_memory_desc_create_with_tag(&bmd,1,bd,dnnl_f32,dnnl_a));
  dnnl_primitive_attr_t attr; CK(dnnl_primitive_attr_create(&attr));
  dnnl_post_ops_t po; CK(dnnl_post_ops_create(&po)); CK(dnnl_post_ops_append_eltwise(po,dnnl_eltwise_relu,0,0));
  CK(dnnl_primitive_attr_set_post_ops(attr,po));
  int q = (sdt==dnnl_u8||sdt==dnnl_s8);
  if(q){ CK(dnnl_primitive_attr_set_scales_mask(attr,DNNL_ARG_SRC,0)); CK(dnnl_primitive_attr_set_scales_mask(attr,DNNL_ARG_WEIGHTS,1)); if(ddt!=dnnl_f32) CK(dnnl_primitive_attr_set_scales_mask(attr,DNNL_ARG_DST,0));}
  dnnl_dims_t st={stride,stride}, dil={0,0}, pl={K/2,K/2};
  dnnl_primitive_desc_t pd;
  dnnl_status_t s=dnnl_convolution_forward_primitive_desc_create(&pd,eng,dnnl_forward_inference,dnnl_convolution_direct,smd,wmd,bmd,dmd,st,dil,pl,pl,attr);
  if(s){printf("%-28s unimplemented (%d)\n",name,s);return -1;}
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
  dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd));
  dnnl_memory_t sm,wm,dm,bm,sc1,sc2,sc3;
  CK(dnnl_memory_create(&sm,smd,eng,DNNL_MEMORY_ALLOCATE));
  CK(dnnl_memory_create(&wm,dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0),eng,DNNL_MEMORY_ALLOCATE));
  CK(dnnl_memory_create(&dm,dmd,eng,DNNL_MEMORY_ALLOCATE));
  CK(dnnl_memory_create(&bm,bmd,eng,DNNL_MEMORY_ALLOCATE));
  dnnl_memory_desc_t s1md,sOmd; dnnl_dims_t one={1},od={O};
  dnnl_memory_desc_create_with_tag(&s1md,1,one,dnnl_f32,dnnl_a); dnnl_memory_desc_create_with_tag(&sOmd,1,od,dnnl_f32,dnnl_a);
  dnnl_memory_create(&sc1,s1md,eng,DNNL_MEMORY_ALLOCATE);dnnl_memory_create(&sc2,sOmd,eng,DNNL_MEMORY_ALLOCATE);dnnl_memory_create(&sc3,s1md,eng,DNNL_MEMORY_ALLOCATE);
  void*h; dnnl_memory_get_data_handle(sc1,&h); ((float*)h)[0]=0.1f; dnnl_memory_get_data_handle(sc3,&h); ((float*)h)[0]=0.1f;
  dnnl_memory_get_data_handle(sc2,&h); for(int i=0;i<O;i++)((float*)h)[i]=0.01f;
  dnnl_memory_get_data_handle(sm,&h); memset(h,1,dnnl_memory_desc_get_size(smd));
  dnnl_memory_get_data_handle(wm,&h); memset(h,1,dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0)));
  dnnl_exec_arg_t a[8]={{DNNL_ARG_SRC,sm},{DNNL_ARG_WEIGHTS,wm},{DNNL_ARG_BIAS,bm},{DNNL_ARG_DST,dm}}; int na=4;
  size_t spb=0; const_dnnl_memory_desc_t spmd=dnnl_primitive_desc_query_md(pd,dnnl_query_scratchpad_md,0);
  if(q){a[na++]=(dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES|DNNL_ARG_SRC,sc1};a[na++]=(dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES|DNNL_ARG_WEIGHTS,sc2}; if(ddt!=dnnl_f32)a[na++]=(dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES|DNNL_ARG_DST,sc3};}
  (void)spb;(void)spmd;
  for(int i=0;i<3;i++){dnnl_primitive_execute(p,str,na,a);} dnnl_stream_wait(str);
  double best=1e9; for(int r=0;r<7;r++){double t0=now(); for(int i=0;i<5;i++)dnnl_primitive_execute(p,str,na,a); dnnl_stream_wait(str); double t=(now()-t0)/5; if(t<best)best=t;}
  double gf=2.0*N*O*OH*OH*C*K*K/best/1e9;
  printf("%-28s %-32s %8.2f ms %6.1f GFLOP/s\n",name,impl,best*1e3,gf);
  return best;
}
int main(int argc,char**argv){
  int N=32,C=64,O=64,H=38,K=3,S=1; if(argc>1){N=atoi(argv[1]);C=atoi(argv[2]);O=atoi(argv[3]);H=atoi(argv[4]);K=atoi(argv[5]);S=atoi(argv[6]);}
  dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_create(&str,eng,dnnl_stream_default_flags);
  printf("N=%d C=%d O=%d H=%d K=%d S=%d\n",N,C,O,H,K,S);
  double f=run(dnnl_f32,dnnl_f32,dnnl_f32,N,C,O,H,K,S,"f32");
  run(dnnl_bf16,dnnl_bf16,dnnl_bf16,N,C,O,H,K,S,"bf16");
  run(dnnl_bf16,dnnl_bf16,dnnl_f32,N,C,O,H,K,S,"bf16->f32");
  double a=run(dnnl_u8,dnnl_s8,dnnl_u8,N,C,O,H,K,S,"u8s8->u8");
  double b=run(dnnl_u8,dnnl_s8,dnnl_f32,N,C,O,H,K,S,"u8s8->f32");
  double c=run(dnnl_s8,dnnl_s8,dnnl_s8,N,C,O,H,K,S,"s8s8->s8");
  double d=run(dnnl_u8,dnnl_s8,dnnl_s8,N,C,O,H,K,S,"u8s8->s8");
  printf("ratios f32/int8: u8->u8 %.2f u8->f32 %.2f s8->s8 %.2f u8->s8 %.2f\n",f/a,f/b,f/c,f/d);
  f=run(dnnl_f32,dnnl_f32,dnnl_f32,N,C,O,H,K,S,"f32 again"); printf("f32/u8u8 %.2f\n",f/a);
  return 0;
}

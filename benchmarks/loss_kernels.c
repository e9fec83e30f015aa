// loss_kernels.c: times the fused loss's CPU kernels of Kernels/losses.cl (lac_embed_cpu, seg_pixel_cpu,
// seg_final, then seg_backward or seg_backward_cpu) outside refineseg, at the shapes of
// `bench train --batch 8 --size 128 --width 16` (N 8, H·W 16384, D 32), with the launch sizes of
// CLBackend.runItems and the options of CLBackend+Loss.swift, on OpenCL platform 0, device 0 (PoCL).
// Bytes per kernel as bench train counts them (the sizes of the buffer arguments). Each of `reps`
// rounds runs the four kernels in order; it prints each kernel's median and minimum device time, and
// checksums (loss, Σ|dLogits|, Σ|dE|, Σ|pixel state|) to compare two versions of the file.
//   cc -O2 -o /tmp/loss_kernels benchmarks/loss_kernels.c -lOpenCL -lm
//   /tmp/loss_kernels REPO_ROOT [reps] [extra build options]   (REPO_ROOT/Kernels/{common.h,losses.cl}; for an
//   older version: mkdir -p OLD/Kernels && git show REV:Kernels/losses.cl > OLD/Kernels/losses.cl, same for common.h)
//   BWD=seg_backward_cpu (the kernel of the CPU layout since c17ee80; without it the group kernel seg_backward)
//   ONLY=k: also launch kernel k (0..3) alone 5·reps times and print wall and process CPU time per launch
//   (CPU time is steadier than wall time when other jobs share the cores).
//   SPAN, L1, LSPAN, L4: span and local sizes other than the host's.
// The kernels are timed on the same data back to back, so the 16.8 MB embedding may stay in a large
// last-level cache between launches; `bench train` times them inside the step.
// Harness: times the loss kernels of Kernels/losses.cl on PoCL with the training-step shapes.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/resource.h>
#include <time.h>
static double cpu(){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}
static char* slurp(const char* p){FILE*f=fopen(p,"rb");if(!f){perror(p);exit(1);}fseek(f,0,2);long n=ftell(f);fseek(f,0,0);char*b=malloc(n+1);fread(b,1,n,f);b[n]=0;fclose(f);return b;}
#define CK(x) do{cl_int e_=(x); if(e_!=CL_SUCCESS){fprintf(stderr,"%s:%d err %d\n",__FILE__,__LINE__,e_);exit(1);}}while(0)
static cl_context ctx; static cl_command_queue q; static cl_device_id dev;
typedef struct { cl_mem m; size_t bytes; } Buf;
static Buf mk(size_t n, float* init){cl_int e;Buf b;b.bytes=n*4;b.m=clCreateBuffer(ctx,CL_MEM_READ_WRITE|(init?CL_MEM_COPY_HOST_PTR:0),b.bytes,init,&e);CK(e);return b;}
static float frand(unsigned* s){*s=*s*1664525u+1013904223u;return ((*s>>8)&0xffffff)/16777216.0f;}
typedef struct { const char* name; double ms[256]; int n; size_t bytes; } Stat;
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const char* root=argc>1?argv[1]:"."; int reps=argc>2?atoi(argv[2]):20; const char* extra=argc>3?argv[3]:"";
  int N=8,HW=16384,D=32,SPAN=getenv("SPAN")?atoi(getenv("SPAN")):1024,spans=(HW+SPAN-1)/SPAN, LSPAN=getenv("LSPAN")?atoi(getenv("LSPAN")):64;
  char path[512]; snprintf(path,512,"%s/Kernels/common.h",root); char*c=slurp(path); snprintf(path,512,"%s/Kernels/losses.cl",root); char*l=slurp(path);
  char*src=malloc(strlen(c)+strlen(l)+4); strcpy(src,c); strcat(src,"\n"); strcat(src,l);
  cl_platform_id pl; CK(clGetPlatformIDs(1,&pl,NULL)); CK(clGetDeviceIDs(pl,CL_DEVICE_TYPE_ALL,1,&dev,NULL));
  cl_int e; ctx=clCreateContext(NULL,1,&dev,NULL,NULL,&e);CK(e); q=clCreateCommandQueue(ctx,dev,CL_QUEUE_PROFILING_ENABLE,&e);CK(e);
  cl_program p=clCreateProgramWithSource(ctx,1,(const char**)&src,NULL,&e);CK(e);
  char flags[1024]; snprintf(flags,1024,"-cl-std=CL1.2 -cl-mad-enable -DRS_WG=64 -DRS_GPU_WG=256 -DRS_CHUNK=4096 -DBCE_CHUNK=4096 -DSEG_CHUNK=1024 -DLAC_SPAN_CPU=%d -DWITH_LAC=1 -DLAC_D=%d -DSEG_SPAN_CPU=%d -DCONTIGUOUS_ITEMS=1 %s",LSPAN,D,SPAN,extra);
  if(clBuildProgram(p,1,&dev,flags,NULL,NULL)!=CL_SUCCESS){size_t sz;clGetProgramBuildInfo(p,dev,CL_PROGRAM_BUILD_LOG,0,NULL,&sz);char*lg=malloc(sz+1);clGetProgramBuildInfo(p,dev,CL_PROGRAM_BUILD_LOG,sz,lg,NULL);fprintf(stderr,"%s\n",lg);return 1;}
  unsigned s=1; float*hx=malloc(4*N*HW),*hy=malloc(4*N*HW),*he=malloc(4*(size_t)N*D*HW);
  for(int i=0;i<N*HW;i++){hx[i]=(frand(&s)-0.5f)*8;hy[i]=frand(&s)<0.3f?1:0;}
  for(size_t i=0;i<(size_t)N*D*HW;i++) he[i]=frand(&s)-0.4f;
  Buf x=mk(N*HW,hx),y=mk(N*HW,hy),E=mk((size_t)N*D*HW,he),norms=mk(N*HW,0),embP=mk(N*spans*(2*D+1),0),protos=mk(N*2*D,0),valid=mk(N,0),
      ps=mk(2*N*HW,0),parts=mk(N*spans*6,0),loss=mk(1,0),stats=mk((N+1)*4,0),dl=mk(1,(float[]){1.0f}),dx=mk(N*HW,0),dE=mk((size_t)N*D*HW,0);
  cl_kernel k1=clCreateKernel(p,"lac_embed_cpu",&e);CK(e); cl_kernel k2=clCreateKernel(p,"seg_pixel_cpu",&e);CK(e); cl_kernel k3=clCreateKernel(p,"seg_final",&e);CK(e); cl_kernel k4=clCreateKernel(p,getenv("BWD")?getenv("BWD"):"seg_backward",&e);CK(e);
  int a=0; float tau=0.1f,gamma=1.0f,wb=0.5f,wd=-0.5f,wl=0.1f;
#define BA(k,b) CK(clSetKernelArg(k,a++,sizeof(cl_mem),&(b).m))
#define IA(k,v) do{int t_=(v);CK(clSetKernelArg(k,a++,4,&t_));}while(0)
#define FA(k,v) do{float t_=(v);CK(clSetKernelArg(k,a++,4,&t_));}while(0)
  a=0;BA(k1,E);BA(k1,y);BA(k1,norms);BA(k1,embP);IA(k1,HW);IA(k1,spans);
  size_t b1=E.bytes+y.bytes+norms.bytes+embP.bytes;
  a=0;BA(k2,x);BA(k2,y);BA(k2,E);BA(k2,norms);BA(k2,embP);BA(k2,protos);BA(k2,valid);BA(k2,ps);BA(k2,parts);IA(k2,HW);IA(k2,spans);FA(k2,tau);FA(k2,gamma);
  size_t b2=x.bytes+y.bytes+E.bytes+norms.bytes+embP.bytes+protos.bytes+valid.bytes+ps.bytes+parts.bytes;
  a=0;BA(k3,parts);BA(k3,valid);BA(k3,loss);BA(k3,stats);IA(k3,N);IA(k3,spans);IA(k3,HW);FA(k3,wb);FA(k3,wd);FA(k3,wl);
  int newb=getenv("BWD")!=NULL; size_t b4;
  if(!newb){a=0;BA(k4,dl);BA(k4,x);BA(k4,y);BA(k4,stats);BA(k4,dx);BA(k4,E);BA(k4,norms);BA(k4,protos);BA(k4,ps);BA(k4,dE);IA(k4,N);IA(k4,D);IA(k4,HW);FA(k4,wb);FA(k4,wd);FA(k4,wl);
  b4=dl.bytes+x.bytes+y.bytes+stats.bytes+dx.bytes+E.bytes+norms.bytes+protos.bytes+ps.bytes+dE.bytes;}
  else {a=0;BA(k4,dl);BA(k4,x);BA(k4,y);BA(k4,parts);BA(k4,valid);BA(k4,loss);IA(k4,0);BA(k4,dx);BA(k4,E);BA(k4,norms);BA(k4,protos);BA(k4,ps);BA(k4,dE);IA(k4,N);IA(k4,HW);IA(k4,spans);FA(k4,wb);FA(k4,wd);FA(k4,wl);
  b4=dl.bytes+x.bytes+y.bytes+parts.bytes+valid.bytes+loss.bytes+dx.bytes+E.bytes+norms.bytes+protos.bytes+ps.bytes+dE.bytes;}
  // runItems: groups of the largest power of two l with l*2<=items0 and total/(l*2)>=32
  size_t g1[2]={spans,N},l1[2]; {int L=1;int tot=spans*N;while(L*2<=spans&&tot/(L*2)>=32)L*=2;l1[0]=getenv("L1")?atoi(getenv("L1")):L;l1[1]=1; g1[0]=(spans+l1[0]-1)/l1[0]*l1[0];}
  int it4=(HW+LSPAN-1)/LSPAN; size_t g4[2]={it4,N},l4[2]; {int L=1;int tot=it4*N;while(L*2<=it4&&tot/(L*2)>=32)L*=2;l4[0]=getenv("L4")?atoi(getenv("L4")):L;l4[1]=1; g4[0]=(it4+l4[0]-1)/l4[0]*l4[0];}
  size_t g3=1; if(newb){g4[0]=g1[0];g4[1]=g1[1];l4[0]=l1[0];l4[1]=1;}
  Stat st[4]={{"lac_embed_cpu"},{"seg_pixel_cpu"},{"seg_final"},{"seg_backward"}}; st[0].bytes=b1;st[1].bytes=b2;st[2].bytes=parts.bytes+valid.bytes+loss.bytes+stats.bytes;st[3].bytes=b4;
  for(int r=0;r<reps+2;r++){
    cl_event ev[4];
    CK(clEnqueueNDRangeKernel(q,k1,2,NULL,g1,l1,0,NULL,&ev[0]));
    CK(clEnqueueNDRangeKernel(q,k2,2,NULL,g1,l1,0,NULL,&ev[1]));
    CK(clEnqueueNDRangeKernel(q,k3,1,NULL,&g3,NULL,0,NULL,&ev[2]));
    CK(clEnqueueNDRangeKernel(q,k4,2,NULL,g4,l4,0,NULL,&ev[3]));
    CK(clFinish(q));
    for(int i=0;i<4;i++){cl_ulong t0,t1;clGetEventProfilingInfo(ev[i],CL_PROFILING_COMMAND_START,8,&t0,NULL);clGetEventProfilingInfo(ev[i],CL_PROFILING_COMMAND_END,8,&t1,NULL);if(r>=2)st[i].ms[st[i].n++]=(t1-t0)*1e-6;clReleaseEvent(ev[i]);}
  }
  if(getenv("ONLY")){int k=atoi(getenv("ONLY")); cl_kernel ks[4]={k1,k2,k3,k4}; size_t*gs[4]={g1,g1,&g3,g4},*ls[4]={l1,l1,NULL,l4}; int dims[4]={2,2,1,2};
    double c0=cpu(); struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0); int R=reps*5;
    for(int r=0;r<R;r++) CK(clEnqueueNDRangeKernel(q,ks[k],dims[k],NULL,gs[k],ls[k],0,NULL,NULL));
    CK(clFinish(q)); clock_gettime(CLOCK_MONOTONIC,&t1); double c1=cpu();
    double w=(t1.tv_sec-t0.tv_sec)*1e3+(t1.tv_nsec-t0.tv_nsec)*1e-6;
    printf("ONLY %s: wall %.3f ms/launch, cpu %.3f ms/launch\n",st[k].name,w/R,(c1-c0)*1e3/R);}
  for(int i=0;i<4;i++){qsort(st[i].ms,st[i].n,8,cmpd);double m=st[i].ms[st[i].n/2];printf("%-16s med %.3f ms (min %.3f)  %.1f GB/s (%.1f MB)\n",st[i].name,m,st[i].ms[0],st[i].bytes/m/1e6,st[i].bytes/1e6);}
  float L;CK(clEnqueueReadBuffer(q,loss.m,CL_TRUE,0,4,&L,0,NULL,NULL));
  float*hdx=malloc(4*N*HW),*hdE=malloc(4*(size_t)N*D*HW),*hps=malloc(8*N*HW);
  CK(clEnqueueReadBuffer(q,dx.m,CL_TRUE,0,dx.bytes,hdx,0,NULL,NULL));CK(clEnqueueReadBuffer(q,dE.m,CL_TRUE,0,dE.bytes,hdE,0,NULL,NULL));CK(clEnqueueReadBuffer(q,ps.m,CL_TRUE,0,ps.bytes,hps,0,NULL,NULL));
  double sx=0,sE=0,sp=0; for(int i=0;i<N*HW;i++)sx+=fabs(hdx[i]); for(size_t i=0;i<(size_t)N*D*HW;i++)sE+=fabs(hdE[i]); for(int i=0;i<2*N*HW;i++)sp+=fabs(hps[i]);
  printf("loss %.9g  |dx| %.9g  |dE| %.9g |ps| %.9g\n",L,sx,sE,sp);
  return 0;}
